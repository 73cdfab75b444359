"""Overhead of the package's training loop and of ``transform`` over bare PyTorch.

Training, one epoch over 10,000 Fashion-MNIST training images kept as uint8,
with 100 random pseudo-labels, the compact CNN, SGD with Nesterov momentum and
a cosine schedule, the same thread count everywhere, as many images a step as
``batch_size="auto"`` takes on the device (128 on the CPU, 256 on a GPU) for
every side. Sides:

- ``package``: the package's training stage (``skclusterfit._training.train``,
  the loop every stage uses), batched "strong" augmentation;
- ``bare``: a plain PyTorch loop over the same batches with the package's own
  batched augmentation and channels-last memory, the loop's overhead alone;
- ``bare, NCHW memory``: the same with the default memory layout, which
  measures what channels-last memory gains;
- ``user-style``: the loop a user would write without the package: a Dataset
  applying torchvision's per-image transforms (random resized crop 50-100%,
  flip, colour jitter: the same augmentation) read by a ``DataLoader``;
- ``package, bfloat16`` and ``bare, bfloat16``: the first two with the forward
  pass under bfloat16 autocast (``precision="bfloat16"``);
- ``bare, data on the device`` (and its bfloat16 twin): the loop written for a
  GPU, uint8 images, labels and order copied to the device once, each batch
  gathered, scaled and augmented there.

Inference: ``ClusterFitTransformer.transform`` against a bare
``torch.inference_mode()`` loop over the same fitted network and batches.

After a warm-up round that is not recorded, every round runs each side once,
in an order that alternates from round to round (forward, then backward), so
that no side always runs first or last.
The ratio package / bare is reported per round, with the median and the range
over rounds. Target: ratio >= 0.95 against each bare loop.

Usage::

    python benchmarks/perf_training.py                 # 10k images, 5 rounds, CPU
    python benchmarks/perf_training.py --quick         # 2k images, 2 rounds
    python benchmarks/perf_training.py --device cuda   # on a GPU
"""

from __future__ import annotations

import math

import _common as common
import numpy as np
import torch
import torch.nn.functional as F

from skclusterfit import ClusterFitTransformer
from skclusterfit._testing import (
    ArrayImages,
    ClassIds,
    augment,
    autocast,
    build_network,
    make_config,
    resolve_batch,
    to_device,
    train,
)
from skclusterfit.datasets import load_fashion_mnist

BATCH = 128
BFLOAT16 = torch.bfloat16


def package_epoch(network, images, targets, seed, device, dtype=None, batch=BATCH):
    """One epoch of the package's training stage."""
    precision = "float32" if dtype is None else {torch.bfloat16: "bfloat16"}[dtype]
    params = ClusterFitTransformer(batch_size=batch, precision=precision).get_params()
    config = make_config(
        params, epochs=1, device=device, image_shape=(images.shape[3], *images.shape[1:3])
    )
    train(
        network,
        ArrayImages(images, (0.0, 255.0)),
        ClassIds(targets),
        config=config,
        generator=torch.Generator().manual_seed(seed),
        stage="clusterfit",
    )


def _optimiser(network, steps):
    optimizer = torch.optim.SGD(
        network.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps))
    )
    return optimizer, scheduler


def _step(network, optimizer, scheduler, x, y, device, dtype):
    with autocast(device, dtype):
        logits = network(x)
    loss = F.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()


def bare_epoch(
    network, images, targets, seed, device, dtype=None, batch=BATCH, layout=torch.channels_last
):
    """One epoch of a plain loop: shuffle, convert, augment (the package's), step."""
    generator = torch.Generator().manual_seed(seed)
    network.to(device, memory_format=layout).train()
    optimizer, scheduler = _optimiser(network, math.ceil(len(images) / batch))
    labels = torch.as_tensor(targets)
    order = torch.randperm(len(images), generator=generator).numpy()
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        x = torch.from_numpy(images[idx].astype(np.float32) / 255).permute(0, 3, 1, 2)
        x = augment(to_device(x, device), "strong", generator).contiguous(memory_format=layout)
        _step(network, optimizer, scheduler, x, to_device(labels[idx], device), device, dtype)


def resident_epoch(network, images, targets, seed, device, dtype=None, batch=BATCH):
    """One epoch of a loop written for the GPU: data moved to the device once.

    The uint8 images, the labels and the epoch's order are copied to the
    device before the loop; each batch is gathered, scaled and augmented
    there, with no host-side work per step.
    """
    generator = torch.Generator().manual_seed(seed)
    network.to(device, memory_format=torch.channels_last).train()
    optimizer, scheduler = _optimiser(network, math.ceil(len(images) / batch))
    held = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    labels = torch.as_tensor(targets).to(device)
    order = torch.randperm(len(images), generator=generator).to(device)
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        x = held.index_select(0, idx).to(torch.float32).mul_(1.0 / 255.0).permute(0, 3, 1, 2)
        x = augment(x, "strong", generator).contiguous(memory_format=torch.channels_last)
        _step(network, optimizer, scheduler, x, labels[idx], device, dtype)


class _TorchvisionImages(torch.utils.data.Dataset):
    """Images and labels with torchvision's per-image transforms, as users write them."""

    def __init__(self, images, targets):
        from torchvision.transforms import v2

        self.images, self.targets = images, targets
        self.transform = v2.Compose(
            [
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.RandomResizedCrop(images.shape[1:3], scale=(0.5, 1.0), antialias=True),
                v2.RandomHorizontalFlip(),
                v2.ColorJitter(brightness=0.4, contrast=0.4),
            ]
        )

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        # A writable copy: torchvision warns about read-only arrays.
        return self.transform(np.array(self.images[index])), int(self.targets[index])


def user_epoch(network, images, targets, seed, device, dtype=None, batch=BATCH):
    """One epoch as a user writes it without the package: Dataset, transforms, DataLoader."""
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        _TorchvisionImages(images, targets), batch_size=batch, shuffle=True
    )
    network.to(device, memory_format=torch.channels_last).train()
    optimizer, scheduler = _optimiser(network, len(loader))
    for x, y in loader:
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        _step(network, optimizer, scheduler, x, y.to(device), device, dtype)


def bare_inference(network, images, device, batch=BATCH, features=None):
    """The network's features of ``images`` in a plain loop (``features``: what computes
    them, default ``network.features``)."""
    network.to(device).eval()
    features = features or network.features
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(images[start : start + batch].astype(np.float32) / 255)
            x = x.permute(0, 3, 1, 2).to(device).contiguous(memory_format=torch.channels_last)
            out.append(features(x).float().cpu().numpy())
    return np.concatenate(out)


def _synchronised(function, device):
    """``function`` that waits for the device to finish before it returns."""

    def run(*args):
        result = function(*args)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return result

    return run


def alternating_rounds(sides: dict, n: int, rounds: int, device, warm_up: bool = True) -> dict:
    """Images per second of every side, each round in the other order.

    A first round, not recorded, warms up every side (allocator, kernels),
    unless ``warm_up`` is off (the caller has run and timed its own).
    """
    for name in sides if warm_up else ():
        _synchronised(sides[name], device)(rounds)
    speeds = {name: [] for name in sides}
    for r in range(rounds):
        names = list(sides) if r % 2 == 0 else list(reversed(sides))
        for name in names:
            _, seconds = common.timed(_synchronised(sides[name], device), r)
            speeds[name].append(n / seconds)
        print(f"round {r}", {k: round(v[-1]) for k, v in speeds.items()}, flush=True)
    return speeds


def training_sides(images, targets, device, batch: int) -> dict:
    """Side name -> function of the round running one epoch on a fresh network."""
    stats = ([0.286], [0.353])

    def fresh():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return build_network("cnn", (1, 28, 28), 100, *stats)

    def side(epoch, **options):
        return lambda r: epoch(fresh(), images, targets, r, device, batch=batch, **options)

    return {
        "package": side(package_epoch),
        "bare": side(bare_epoch),
        "bare, NCHW memory": side(bare_epoch, layout=torch.contiguous_format),
        "user-style": side(user_epoch),
        "package, bfloat16": side(package_epoch, dtype=BFLOAT16),
        "bare, bfloat16": side(bare_epoch, dtype=BFLOAT16),
        "bare, data on the device": side(resident_epoch),
        "bare, data on the device, bfloat16": side(resident_epoch, dtype=BFLOAT16),
    }


def resnet_step_speeds(n: int, side: int, rounds: int, device: torch.device) -> dict:
    """A torchvision ResNet-18 trained on colour ``side`` x ``side`` images, bfloat16:
    the package's loop against the bare loop with the data on the device.

    The images are Fashion-MNIST's first ``n``, resized and repeated into three
    channels (throughput does not depend on what they show).
    """
    images = load_fashion_mnist("train").data[:n]
    images = common.resize(images, side).reshape(n, side, side, 1).repeat(3, axis=3)
    targets = np.random.RandomState(0).randint(0, 100, n)

    def fresh():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return build_network("resnet18", (3, side, side), 100, [0.286] * 3, [0.353] * 3)

    sides = {
        "package, bfloat16": lambda r: package_epoch(fresh(), images, targets, r, device, BFLOAT16),
        "bare, data on the device, bfloat16": lambda r: resident_epoch(
            fresh(), images, targets, r, device, BFLOAT16
        ),
    }
    speeds = alternating_rounds(sides, n, rounds, device)
    ratio = ratios(speeds, "package, bfloat16", "bare, data on the device, bfloat16")
    return {
        "n_images": n,
        "side": side,
        "rounds": rounds,
        "images_per_second": speeds,
        "package / bare, data on the device (median)": float(np.median(ratio)),
        "target": 0.9,
    }


def inference_sides(images, device, batch: int) -> tuple[dict, ClusterFitTransformer]:
    n = len(images)
    flat = images.reshape(n, -1)
    cf = ClusterFitTransformer(
        n_clusters=10,
        max_epochs=1,
        extractor_epochs=1,
        feature_stages=1,  # what the bare loop computes: the pooled last stage
        batch_size=batch,
        random_state=0,
        device=str(device),
    ).fit(flat[:1000])
    # Both sides compute the same features: exactly on the CPU; on a GPU, cuDNN
    # may pick other convolution algorithms (and TF32) for other batch shapes.
    np.testing.assert_allclose(
        cf.transform(flat[:256]),
        bare_inference(cf.network_, images[:256], device, batch),
        atol=1e-4 if device.type == "cpu" else 1e-2,
    )
    sides = {
        "package": lambda r: cf.transform(flat),
        "bare": lambda r: bare_inference(cf.network_, images, device, batch),
    }
    return sides, cf


def ratios(speeds: dict, side: str, baseline: str) -> list[float]:
    """Per-round ratio of ``side``'s speed to ``baseline``'s."""
    return [a / b for a, b in zip(speeds[side], speeds[baseline], strict=True)]


def recorded_ratios(speeds: dict, comparisons: list) -> list[tuple]:
    """``(side, baseline, target, per-round ratios)`` for each comparison the record holds.

    Records made before a side was added (or on a machine that skips one) hold
    fewer sides; their comparisons are left out rather than failing.
    """
    return [
        (side, baseline, target, ratios(speeds, side, baseline))
        for side, baseline, target in comparisons
        if side in speeds and baseline in speeds
    ]


def measure(n: int, rounds: int, device: torch.device, batch: int = BATCH) -> dict:
    """Training and inference speeds of every side at ``batch`` images a step, for the record."""
    images = load_fashion_mnist("train").images[:n, :, :, None]
    targets = np.random.RandomState(0).randint(0, 100, n)
    sides = training_sides(images, targets, device, batch)
    training = alternating_rounds(sides, n, rounds, device)
    sides, _ = inference_sides(images, device, batch)
    inference = alternating_rounds(sides, n, rounds, device)
    return {
        "n_images": n,
        "rounds": rounds,
        "batch_size": batch,
        "device": str(device),
        "training_images_per_second": training,
        "inference_images_per_second": inference,
    }


def main():
    parser = common.arguments(__doc__)
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    args = parser.parse_args()
    n, rounds = (2_000, 2) if args.quick else (10_000 if args.device == "cpu" else 30_000, 5)
    device = torch.device(args.device)
    stem = "perf_training" if args.device == "cpu" else f"perf_training_{args.device}"
    common.save(stem, args.quick, measure(n, rounds, device, auto_batch(device)), markdown)


def auto_batch(device: torch.device) -> int:
    """Images a step that ``batch_size="auto"`` takes for 28x28 grey images on ``device``."""
    return resolve_batch("auto", 0.05, device, (1, 28, 28))[0]


# Ratios reported, each against its baseline: (side, baseline, target).
COMPARISONS = {
    "training": [
        ("package", "bare", 0.95),
        ("package, bfloat16", "bare, bfloat16", 0.95),
        ("bare", "bare, NCHW memory", None),
        ("package", "user-style", None),
        ("package, bfloat16", "package", None),
        ("package", "bare, data on the device", 0.95),
        ("package, bfloat16", "bare, data on the device, bfloat16", 0.95),
    ],
    "inference": [("package", "bare", 0.95)],
}


def markdown(record):
    lines = common.markdown_header(
        "Training loop and inference: package vs bare PyTorch", record
    ) + [
        f"{record['n_images']} Fashion-MNIST images on {record['device']}, batch "
        f"{record['batch_size']}, {record['rounds']} rounds, the order of the sides "
        "alternating between rounds. Images per second: median (min-max over rounds).",
        "",
    ]
    for stage, comparisons in COMPARISONS.items():
        speeds = record[f"{stage}_images_per_second"]
        rows = [
            [name, f"{np.median(v):.0f} ({min(v):.0f}-{max(v):.0f})"] for name, v in speeds.items()
        ]
        lines += [f"## {stage.capitalize()}", ""]
        lines += common.markdown_table(["side", "images/s"], rows) + [""]
        rows = []
        for side, baseline, target, found in recorded_ratios(speeds, comparisons):
            median = np.median(found)
            verdict = "" if target is None else ("met" if median >= target else "missed")
            rows.append(
                [
                    f"{side} / {baseline}",
                    f"{median:.3f}",
                    f"{min(found):.3f}-{max(found):.3f}",
                    f">= {target}: {verdict}" if target else "",
                ]
            )
        lines += common.markdown_table(["ratio", "median", "range over rounds", "target"], rows)
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
