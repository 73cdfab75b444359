"""The CPU: its kernels and bfloat16, its roofline, and training speed in each precision.

Each CPU mode runs in a process of its own, started with the environment that
sets it, since torch and oneDNN choose their kernels when they load:

- ``native``: the CPU as it is;
- ``avx2``: ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
  MKL_ENABLE_INSTRUCTIONS=AVX2``, the kernels of torch, oneDNN and MKL held to
  AVX2, as on the many CPUs without AVX512 or bfloat16 arithmetic (without
  the third, MKL's matrix products still use AVX512). ``precision="auto"``
  resolves to float32 there by itself (the package reads the first two).

In each mode it records the CPU (model, torch's capability, whether bfloat16
is native, what ``precision="auto"`` resolves to, torch's threads) and:

- the roofline: float32 matrix products of 2048 x 2048 (best of 5), in GFLOP/s;
- the FLOPs of one training image of the compact CNN at 28 x 28 (forward and
  backward, torch's ``FlopCounterMode``);
- the seconds of a fit with the package's defaults on 10,000 Fashion-MNIST
  training images, in all and by stage;
- images per second of the package's training stage and of a bare PyTorch
  loop (``perf_training``'s), in float32 and in bfloat16, one epoch of
  Fashion-MNIST images with 100 random pseudo-labels per round, rounds in
  alternating order; and the share of the roofline each reaches.

``EMULATED_BFLOAT16_SLOWDOWN`` in ``skclusterfit/_devices.py``, which the
package's warning for ``precision="bfloat16"`` on such a CPU names, is the
``avx2`` mode's package float32 / bfloat16 speed (a test checks the two agree).

Usage::

    python benchmarks/perf_cpu.py           # 4,000 images, 3 rounds, both modes (~15 min)
    python benchmarks/perf_cpu.py --quick   # 256 images, 1 round, a 500-image fit
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import _common as common
import numpy as np
import torch

MODES = common.CPU_MODES
GEMM_SIDE = 2048
SIDES = ("package", "bare", "package, bfloat16", "bare, bfloat16")


def gemm_gflops(repeats: int = 5) -> float:
    """The best float32 rate of ``GEMM_SIDE``-square matrix products, in GFLOP/s."""
    a, b = torch.randn(GEMM_SIDE, GEMM_SIDE), torch.randn(GEMM_SIDE, GEMM_SIDE)
    a @ b  # warm-up
    best = min(common.timed(torch.mm, a, b)[1] for _ in range(repeats))
    return 2 * GEMM_SIDE**3 / best / 1e9


def training_flops_per_image(batch: int = 64) -> float:
    """FLOPs of one training image of the compact CNN at 28 x 28: forward and backward."""
    from torch.utils.flop_counter import FlopCounterMode

    from skclusterfit._testing import build_network

    network = build_network("cnn", (1, 28, 28), 100, [0.286], [0.353])
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 100, (batch,))
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(network(x), y).backward()
    return counter.get_total_flops() / batch


def default_fit(n: int, quick: bool) -> dict:
    """Seconds of a fit with the package's defaults on the first ``n`` Fashion-MNIST
    training images, in all and by stage (``history_``); one epoch a stage if ``quick``."""
    from skclusterfit import ClusterFitTransformer
    from skclusterfit.datasets import load_fashion_mnist

    X = load_fashion_mnist("train").data[:n]
    epochs = {"extractor_epochs": 1, "max_epochs": 1} if quick else {}
    cf, seconds = common.timed(ClusterFitTransformer(**epochs, random_state=0).fit, X)
    stages = {}
    for epoch in cf.history_:
        stages[epoch["stage"]] = stages.get(epoch["stage"], 0.0) + epoch["seconds"]
    return {"n_images": n, "seconds": seconds, "stage_seconds": stages}


def measure_mode(n: int, rounds: int, n_fit: int, quick: bool) -> dict:
    """What this process's CPU mode gives (run in the mode's own process)."""
    from perf_training import BFLOAT16, alternating_rounds, bare_epoch, package_epoch

    from skclusterfit._testing import (
        build_network,
        describe_cpu,
        native_bfloat16,
        precision_name,
    )
    from skclusterfit.datasets import load_fashion_mnist

    cpu = torch.device("cpu")
    images = load_fashion_mnist("train").images[:n, :, :, None]
    targets = np.random.RandomState(0).randint(0, 100, n)

    def side(epoch, dtype=None):
        def run(r):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                network = build_network("cnn", (1, 28, 28), 100, [0.286], [0.353])
            epoch(network, images, targets, r, cpu, dtype)

        return run

    sides = {
        "package": side(package_epoch),
        "bare": side(bare_epoch),
        "package, bfloat16": side(package_epoch, BFLOAT16),
        "bare, bfloat16": side(bare_epoch, BFLOAT16),
    }
    return {
        "cpu": common.cpu_model(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "kernels and bfloat16": describe_cpu(),
        "native_bfloat16": native_bfloat16(cpu),
        "auto_precision": precision_name("auto", cpu),
        "torch_threads": torch.get_num_threads(),
        "gemm_gflops": gemm_gflops(),
        "training_flops_per_image": training_flops_per_image(),
        "images_per_second": alternating_rounds(sides, n, rounds, cpu),
        "default_fit": default_fit(n_fit, quick),
    }


def run_mode(mode: str, sizes: tuple, quick: bool) -> dict:
    """``measure_mode`` in a fresh process started with ``mode``'s environment."""
    environment = {**os.environ, **MODES[mode]}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--measure-mode", *map(str, sizes), str(int(quick))],
        env=environment,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"mode {mode} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["seconds"] = time.perf_counter() - start
    return result


def main():
    parser = common.arguments(__doc__)
    # Used by run_mode only: measure in this process, print the result as JSON.
    parser.add_argument("--measure-mode", nargs=4, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_mode:
        *sizes, quick = args.measure_mode
        print(json.dumps(measure_mode(*sizes, bool(quick))))
        return
    n, rounds, n_fit = (256, 1, 500) if args.quick else (4_000, 3, 10_000)
    modes = {mode: run_mode(mode, (n, rounds, n_fit), args.quick) for mode in MODES}
    fields = {"n_images": n, "rounds": rounds, "batch_size": 128, "modes": modes}
    common.save("perf_cpu", args.quick, fields, markdown)


def median(values) -> float:
    return float(np.median(values))


def emulated_bfloat16_slowdown(record: dict) -> float:
    """The ``avx2`` mode's package float32 / bfloat16 training speed."""
    speeds = record["modes"]["avx2"]["images_per_second"]
    return median(speeds["package"]) / median(speeds["package, bfloat16"])


def markdown(record: dict) -> str:
    lines = common.markdown_header("The CPU: kernels, roofline, precision", record)
    lines += [
        f"{record['n_images']} Fashion-MNIST images, batch {record['batch_size']}, "
        f"{record['rounds']} rounds in alternating order; the compact CNN at 28 x 28. "
        "Mode `avx2`: " + " ".join(f"`{k}={v}`" for k, v in MODES["avx2"].items()) + ".",
        "",
    ]
    rows = []
    for mode, found in record["modes"].items():
        rows.append(
            [
                mode,
                found["cpu"],
                found["kernels and bfloat16"],
                found["auto_precision"],
                found["torch_threads"],
                f"{found['gemm_gflops']:.0f}",
                f"{found['training_flops_per_image'] / 1e6:.1f}",
            ]
        )
    lines += common.markdown_table(
        [
            "mode",
            "CPU",
            "kernels, bfloat16",
            '"auto" trains in',
            "threads",
            "float32 GEMM GFLOP/s",
            "training MFLOP/image",
        ],
        rows,
    )
    lines += [
        "",
        "Images per second, median (min-max over rounds), and share of the GEMM rate:",
        "",
    ]
    rows = []
    for mode, found in record["modes"].items():
        for name in SIDES:
            speeds = found["images_per_second"][name]
            share = median(speeds) * found["training_flops_per_image"] / 1e9
            rows.append(
                [
                    mode,
                    name,
                    f"{median(speeds):.0f} ({min(speeds):.0f}-{max(speeds):.0f})",
                    f"{share / found['gemm_gflops']:.2f}",
                ]
            )
    lines += common.markdown_table(["mode", "side", "images/s", "share of GEMM rate"], rows)
    rows = []
    for mode, found in record["modes"].items():
        speeds = {k: median(v) for k, v in found["images_per_second"].items()}
        rows.append(
            [
                mode,
                f"{speeds['package'] / speeds['bare']:.2f}",
                f"{speeds['package'] / speeds['package, bfloat16']:.2f}",
            ]
        )
    lines += [""] + common.markdown_table(
        ["mode", "package / bare, float32", "float32 / bfloat16 speed, package"], rows
    )
    rows = []
    for mode, found in record["modes"].items():
        fit = found["default_fit"]
        stages = fit["stage_seconds"]
        rows.append(
            [
                mode,
                found["auto_precision"],
                f"{fit['seconds']:.0f}",
                f"{stages['rotnet']:.0f}",
                f"{stages['clusterfit']:.0f}",
                f"{fit['seconds'] - stages['rotnet'] - stages['clusterfit']:.0f}",
            ]
        )
    n_fit = next(iter(record["modes"].values()))["default_fit"]["n_images"]
    lines += [
        "",
        f"A fit with the package's defaults (`ClusterFitTransformer(random_state=0)`) on "
        f"the first {n_fit:,} Fashion-MNIST training images, seconds:",
        "",
    ]
    lines += common.markdown_table(["mode", "trains in", "fit", "RotNet", "N_cf", "the rest"], rows)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
