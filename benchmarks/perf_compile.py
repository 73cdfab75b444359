"""Does ``torch.compile`` pay? The compact CNN's training and inference, eager against compiled.

The loop is ``perf_training.py``'s loop written for speed (uint8 images,
labels and order on the device, each batch gathered, scaled and augmented
there, channels-last memory), on 10,000 Fashion-MNIST training images with 100
random pseudo-labels, as many images a step as ``batch_size="auto"`` takes on
the device. Sides, each with its own network whose starting weights are
restored before every epoch (so that compiled code is reused, not rebuilt):

- ``eager``: the network as it is;
- ``compiled``: ``torch.compile(network)`` (TorchInductor, default mode);
- on CUDA, ``compiled, CUDA graphs``: ``torch.compile(network,
  mode="reduce-overhead")``, which replays the steps as CUDA graphs;

in float32 and in bfloat16 autocast on the CPU (``--quick``: what
``precision="auto"`` takes there), and in what "auto" takes on a GPU
(bfloat16 from compute capability 8.0). Inference: the network's
features, eager against ``torch.compile``, float32.

Recorded for each side: the first epoch's seconds (compilation included,
with an empty compilation cache: the cost a fit pays once per process, less
where the cache on disk already holds the kernels), then images per second
over ``--rounds`` epochs in an order that alternates from round to round;
and, for each compiled side, how many training images a fit must process
before the compilation has paid for itself (never, where compiled steps are
not faster), against the 400,000 training images of a default fit on 10,000
images (N_pre and N_cf).

Usage::

    python benchmarks/perf_compile.py                 # CPU, 10k images, 3 rounds
    python benchmarks/perf_compile.py --quick         # 1k images, 1 round
    python benchmarks/perf_compile.py --device cuda   # on a GPU (gpu_check.py runs it)
"""

from __future__ import annotations

import functools
import os
import tempfile

import _common as common
import numpy as np
import torch
from perf_training import (
    BFLOAT16,
    _synchronised,
    alternating_rounds,
    auto_batch,
    bare_inference,
    resident_epoch,
)

from skclusterfit import ClusterFitTransformer
from skclusterfit._testing import build_network, native_bfloat16
from skclusterfit.datasets import load_fashion_mnist


def default_fit_images(n: int) -> int:
    """Training images a default fit on ``n`` images processes: N_pre's RotNet (each
    image under ``rotations_per_image`` turns, every epoch), then N_cf."""
    params = ClusterFitTransformer().get_params()
    per_image = params["max_epochs"] + params["extractor_epochs"] * params["rotations_per_image"]
    return n * per_image


def _network() -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_network("cnn", (1, 28, 28), 100, [0.286], [0.353])


def training_sides(device: torch.device, both_precisions: bool) -> dict:
    """Side name -> (network, what is called, autocast dtype).

    On the CPU both precisions (CPUs differ in which ``precision="auto"``
    takes) unless ``both_precisions`` is off; on a GPU what "auto" takes.
    """
    dtypes = {"float32": None, "bfloat16": BFLOAT16}
    if device.type != "cpu" or not both_precisions:
        dtypes = {"bfloat16": BFLOAT16} if native_bfloat16(device) else {"float32": None}
    modes = {"compiled": "default"}
    if device.type == "cuda":
        modes["compiled, CUDA graphs"] = "reduce-overhead"
    sides = {}
    for precision, dtype in dtypes.items():
        network = _network()
        sides[f"eager, {precision}"] = (network, network, dtype)
        for name, mode in modes.items():
            network = _network()
            sides[f"{name}, {precision}"] = (network, torch.compile(network, mode=mode), dtype)
    return sides


def _epoch(side, start, images, targets, seed, device, batch) -> None:
    """One epoch of ``side`` from the starting weights ``start``."""
    network, called, dtype = side
    network.load_state_dict(start)
    resident_epoch(called, images, targets, seed, device, dtype, batch)


def training(images, targets, device, rounds: int, batch: int, both_precisions: bool) -> dict:
    """First-epoch seconds and images per second of every training side.

    A side that fails to compile (no C compiler for Triton, say) is recorded
    with its error and left out, so that the other sides are still measured.
    """
    start = _network().state_dict()
    epochs = {
        name: functools.partial(_epoch, side, start, images, targets, device=device, batch=batch)
        for name, side in training_sides(device, both_precisions).items()
    }
    first, errors = {}, {}
    for name, epoch in list(epochs.items()):
        try:
            _, first[name] = common.timed(_synchronised(epoch, device), 0)
        except Exception as exc:
            errors[name] = _error(exc)
            del epochs[name]
            continue
        print(f"{name}: first epoch {first[name]:.1f} s", flush=True)
    # Later epochs draw other augmentations (seeds 1, 2, ...).
    sides = {name: lambda r, epoch=epoch: epoch(r + 1) for name, epoch in epochs.items()}
    speeds = alternating_rounds(sides, len(images), rounds, device, warm_up=False)
    return {"first_epoch_seconds": first, "images_per_second": speeds, "errors": errors}


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:500]}"


def inference(images, device: torch.device, rounds: int, batch: int) -> dict:
    """Images per second of the network's features, eager and compiled."""
    network = _network().to(device).eval()
    eager = bare_inference(network, images[:batch], device, batch)
    compiled = torch.compile(network.features)
    sides = {
        "eager": lambda r: bare_inference(network, images, device, batch),
        "compiled": lambda r: bare_inference(network, images, device, batch, compiled),
    }
    # A first pass over every image meets every batch shape (compiled once each).
    try:
        same, seconds = common.timed(sides["compiled"], 0)
    except Exception as exc:
        return {"errors": {"compiled": _error(exc)}}
    first = {"compiled": seconds}
    difference = float(np.abs(same[:batch] - eager).max())
    speeds = alternating_rounds(sides, len(images), rounds, device, warm_up=False)
    return {
        "first_pass_seconds": first,
        "images_per_second": speeds,
        "largest feature difference": difference,
    }


def break_even(record: dict) -> dict:
    """Training images after which each compiled side's first-epoch cost is repaid."""
    speeds = {name: float(np.median(v)) for name, v in record["images_per_second"].items()}
    first = record["first_epoch_seconds"]
    found = {}
    for name, speed in speeds.items():
        eager = f"eager, {name.rsplit(', ', 1)[1]}"
        if name.startswith("eager") or eager not in speeds:
            continue
        saved_per_image = 1 / speeds[eager] - 1 / speed
        # What compiling cost beyond an eager first epoch.
        cost = first[name] - first[eager]
        found[name] = None if saved_per_image <= 0 else max(cost, 0.0) / saved_per_image
    return found


def measure(n: int, rounds: int, device: torch.device, both_precisions: bool = True) -> dict:
    # A cache of its own, empty: the compilation a fit pays on a machine the first time.
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="perf_compile_")
    images = load_fashion_mnist("train").images[:n, :, :, None]
    targets = np.random.RandomState(0).randint(0, 100, n)
    batch = auto_batch(device)
    found = training(images, targets, device, rounds, batch, both_precisions)
    found["break_even_images"] = break_even(found)
    return {
        "n_images": n,
        "rounds": rounds,
        "batch_size": batch,
        "device": str(device),
        "training": found,
        "inference": inference(images, device, rounds, batch),
        "default_fit_training_images": default_fit_images(10_000),
    }


def main():
    parser = common.arguments(__doc__)
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    args = parser.parse_args()
    n, rounds = (1_000, 1) if args.quick else (10_000, 3)
    device = torch.device(args.device)
    stem = "perf_compile" if args.device == "cpu" else f"perf_compile_{args.device}"
    record = measure(n, rounds, device, both_precisions=not args.quick)
    common.save(stem, args.quick, record, markdown)


def _errors(found: dict) -> list[str]:
    """Lines naming the sides that failed, with their errors."""
    errors = found.get("errors", {})
    return (
        ["", *(f"- {name} failed: `{error}`" for name, error in errors.items())] if errors else []
    )


def _median(values) -> str:
    return f"{np.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def markdown(record: dict) -> str:
    lines = common.markdown_header("torch.compile: eager against compiled", record)
    return "\n".join(lines + markdown_tables(record, "##"))


def markdown_tables(record: dict, level: str) -> list[str]:
    """The record's description and tables under ``level`` headings (``gpu_check.py``
    shows them too)."""
    lines = [
        f"{record['n_images']} Fashion-MNIST images on {record['device']}, the compact CNN, "
        f"batch {record['batch_size']}, {record['rounds']} rounds after a first epoch, the "
        "order of the sides alternating between rounds. Images per second: median (min-max "
        "over rounds). Break-even: training images after which a compiled side has repaid "
        f"its compilation; a default fit on 10,000 images trains on about "
        f"{record['default_fit_training_images']:,}.",
        "",
        f"{level} Training",
        "",
    ]
    found = record["training"]
    rows = []
    for name, speeds in found["images_per_second"].items():
        eager = found["images_per_second"].get(f"eager, {name.rsplit(', ', 1)[1]}")
        even = found["break_even_images"].get(name, "")
        rows.append(
            [
                name,
                f"{found['first_epoch_seconds'][name]:.1f}",
                _median(speeds),
                "" if eager is None else f"{np.median(speeds) / np.median(eager):.2f}",
                "" if even == "" else ("never" if even is None else f"{even:,.0f}"),
            ]
        )
    lines += common.markdown_table(
        ["side", "first epoch (s)", "images/s", "vs eager", "break-even (images)"], rows
    )
    lines += _errors(found)
    found = record["inference"]
    if "images_per_second" not in found:
        return [*lines, "", f"{level} Inference (features, float32)", *_errors(found), ""]
    speeds = found["images_per_second"]
    lines += [
        "",
        f"{level} Inference (features, float32)",
        "",
        *common.markdown_table(
            ["side", "images/s", "vs eager"],
            [
                [name, _median(v), f"{np.median(v) / np.median(speeds['eager']):.2f}"]
                for name, v in speeds.items()
            ],
        ),
        "",
        f"Compiled, first pass over the images (compilation included): "
        f"{found['first_pass_seconds']['compiled']:.1f} s; largest difference from the "
        f"eager features: {found['largest feature difference']:.1e}.",
        "",
    ]
    return lines


if __name__ == "__main__":
    main()
