"""Overhead of the package's training loop and of ``transform`` over bare PyTorch.

Training: the package's training stage (``skclusterfit._training.train``, the
loop every stage uses) against a bare PyTorch loop written the way a user
would, on the same network (the compact CNN, channels-last), data (10,000
Fashion-MNIST training images kept as uint8), pseudo-labels (100 classes),
batch size (128), optimiser and schedule, batched "strong" augmentation and
thread count. Inference: ``ClusterFitTransformer.transform`` against a bare
``torch.inference_mode()`` loop over the same fitted network and batches.

The two sides run in alternation, several rounds each, and the ratio of their
median throughputs is reported (these machines are noisy; a ratio from one run
is sturdier than absolute times). Targets: both ratios >= 0.95.

Usage::

    python benchmarks/perf_training.py           # 10k images, 5 rounds
    python benchmarks/perf_training.py --quick   # 2k images, 2 rounds
"""

from __future__ import annotations

import math

import _common as common
import numpy as np
import torch
import torch.nn.functional as F

from skclusterfit import ClusterFitTransformer
from skclusterfit._networks import build_network
from skclusterfit._sources import ArrayImages
from skclusterfit._targets import ClassIds
from skclusterfit._training import TrainConfig, augment, train
from skclusterfit.datasets import load_fashion_mnist

BATCH = 128


def package_epoch(network, images, targets, seed):
    config = TrainConfig(
        epochs=1,
        batch_size=BATCH,
        learning_rate=0.05,
        lr_schedule="cosine",
        weight_decay=5e-4,
        augmentation="strong",
        balanced_sampling=False,
        device=torch.device("cpu"),
        verbose=0,
    )
    train(
        network,
        ArrayImages(images, (0.0, 255.0)),
        ClassIds(targets),
        config=config,
        generator=torch.Generator().manual_seed(seed),
        stage="clusterfit",
    )


def bare_epoch(network, images, targets, seed):
    """One epoch as a user would write it: shuffle, convert, augment, step."""
    generator = torch.Generator().manual_seed(seed)
    network.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(
        network.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    steps = math.ceil(len(images) / BATCH)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps))
    )
    labels = torch.as_tensor(targets)
    order = torch.randperm(len(images), generator=generator).numpy()
    for start in range(0, len(order), BATCH):
        idx = order[start : start + BATCH]
        x = torch.from_numpy(images[idx].astype(np.float32) / 255).permute(0, 3, 1, 2)
        x = augment(x, "strong", generator).contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(network(x), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()


def bare_inference(network, images):
    network.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), BATCH):
            x = torch.from_numpy(images[start : start + BATCH].astype(np.float32) / 255)
            x = x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
            out.append(network.features(x).numpy())
    return np.concatenate(out)


def main():
    quick = common.arguments(__doc__).parse_args().quick
    n, rounds = (2_000, 2) if quick else (10_000, 5)
    images = load_fashion_mnist("train").images[:n, :, :, None]
    targets = np.random.RandomState(0).randint(0, 100, n)
    stats = ([0.286], [0.353])

    def fresh():
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return build_network("cnn", (1, 28, 28), 100, *stats)

    training = {"package": [], "bare": []}
    for r in range(rounds):
        training["package"].append(n / common.timed(package_epoch, fresh(), images, targets, r)[1])
        training["bare"].append(n / common.timed(bare_epoch, fresh(), images, targets, r)[1])
        print("training images/s", {k: round(v[-1]) for k, v in training.items()}, flush=True)

    cf = ClusterFitTransformer(n_clusters=10, max_epochs=1, extractor_epochs=1, random_state=0)
    flat = images.reshape(n, -1)
    cf.fit(flat[:1000])
    inference = {"package": [], "bare": []}
    for _ in range(rounds):
        inference["package"].append(n / common.timed(cf.transform, flat)[1])
        inference["bare"].append(n / common.timed(bare_inference, cf.network_, images)[1])
        print("inference images/s", {k: round(v[-1]) for k, v in inference.items()}, flush=True)
    # Both sides compute the same features.
    np.testing.assert_allclose(
        cf.transform(flat[:256]), bare_inference(cf.network_, images[:256]), atol=1e-5
    )

    fields = {
        "n_images": n,
        "rounds": rounds,
        "batch_size": BATCH,
        "training_images_per_second": training,
        "inference_images_per_second": inference,
    }
    common.save("perf_training", quick, fields, markdown)


def markdown(record):
    lines = common.markdown_header(
        "Training loop and inference: package vs bare PyTorch", record
    ) + [
        f"{record['n_images']} Fashion-MNIST images, batch {record['batch_size']}, "
        f"{record['rounds']} alternating rounds; median images per second.",
        "",
    ]
    rows = []
    for stage in ("training", "inference"):
        data = record[f"{stage}_images_per_second"]
        package, bare = np.median(data["package"]), np.median(data["bare"])
        ratio = package / bare
        met = "met" if ratio >= 0.95 else "missed"
        rows.append([stage, f"{package:.0f}", f"{bare:.0f}", f"{ratio:.3f}", f">= 0.95: {met}"])
    columns = ["stage", "package", "bare PyTorch", "ratio", "target"]
    return "\n".join(lines + common.markdown_table(columns, rows)) + "\n"


if __name__ == "__main__":
    main()
