"""Every check that needs a GPU, in one run of under 8 minutes on one H100.

Sections, in this order (each timed; one that would overrun the time left is
skipped and recorded as skipped):

1. the CUDA tests (``pytest -m gpu``: every stage on the GPU, a GPU fit
   pickled, saved, loaded and resumed on the CPU);
2. a default fit on 10,000 Fashion-MNIST training images, its time per stage
   and the linear-probe accuracy of its features on the Fashion-MNIST test
   set (probe trained on training images 50,000-54,999, never fitted on);
3. a default fit on all 60,000 Fashion-MNIST training images, time per stage;
4. a default fit on 10,000 colour 32x32 images (``bench_colour.py``'s data;
   "auto" picks ``resnet18_small`` there on CUDA), its time per stage and
   colour linear probe;
5. training and inference throughput of the package's loop against bare
   PyTorch loops on the same GPU (``perf_training.py`` on CUDA: float32 and
   bfloat16, 30,000 images, 5 rounds, as many images a step as
   ``batch_size="auto"`` takes there);
6. a torchvision ResNet-18 trained on 224x224 colour images in bfloat16: the
   package's loop against a bare loop with the data on the device;
7. the quality of ``batch_size="auto"`` (256 images a step for these images
   on a GPU, the learning rate scaled): the fit of 2 at "auto" and at 128,
   three seeds each (``bench_batch_size.py --fashion-10k`` on the CPU);
   then JPEG photos read at 224x224 for the GPU with DataLoader workers,
   against decode alone in as many workers (``perf_decode.py``'s path); then
   one epoch of N_cf's training stage under torch.profiler
   (``perf_profile.py``'s ``step_profile``: milliseconds, host operator calls
   and CUDA kernels per step, and the share of the step the GPU is busy);
   then whether ``torch.compile`` and CUDA graphs pay (``perf_compile.py`` on
   CUDA: training steps eager, compiled and replayed as CUDA graphs, their
   compilation time, and inference);
8. ``torchrun --nproc_per_node=1`` with NCCL running
   ``examples/torchrun_clusterfit.py``, and the saved model loaded;
9. the fit of 2 with ``precision="float32"`` (the default, ``"auto"``, is
   bfloat16 on GPUs of compute capability 8.0 or more), and the fit of 4
   with the compact CNN.

It writes ``gpu_check.json`` and ``gpu_check.md`` (device name, torch and CUDA
versions, every figure) to ``--out`` (default ``benchmarks/results``).

On a lent GPU machine, where the Fashion-MNIST package is not installed, carry
the four data files with the working tree. Once, here, from the repository
root::

    mkdir -p .fashion && cp /usr/share/datasets/fashion-mnist/*.gz .fashion/
    echo /.fashion/ >> .git/info/exclude

then run there, carrying ``.fashion``::

    SKCLUSTERFIT_FASHION_MNIST=.fashion PYTHONPATH=. PYTHONUNBUFFERED=1 \\
        python3 benchmarks/gpu_check.py --out $OUT

The sections' estimates add up to more than one run's budget, so the last
ones may be recorded as skipped.
To add them, copy the first run's ``gpu_check.json`` into
``benchmarks/results`` here, and run on the same machine::

    SKCLUSTERFIT_FASHION_MNIST=.fashion PYTHONPATH=. PYTHONUNBUFFERED=1 \\
        python3 benchmarks/gpu_check.py --out benchmarks/results \\
        --sections compile,torchrun_nccl && cp benchmarks/results/gpu_check.* $OUT/

``--quick`` runs every section at toy sizes on whatever device there is (CPU
included, where the CUDA tests are skipped and torchrun uses gloo): a smoke
run of the script itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common
import numpy as np
import perf_compile
import torch
from bench_colour import colourise
from perf_decode import decode_in_workers, package_reads, photo_rate, write_photos
from perf_profile import step_profile
from perf_training import COMPARISONS, auto_batch, measure, ratios, resnet_step_speeds

import skclusterfit
from skclusterfit import ClusterFitTransformer
from skclusterfit._testing import native_bfloat16
from skclusterfit.datasets import load_fashion_mnist
from skclusterfit.metrics import linear_probe_score

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 8 * 60


class Budget:
    """Seconds left of the run's budget; sections that would overrun it are skipped."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def allows(self, needed: float) -> bool:
        return time.monotonic() + needed < self.deadline


def device_record() -> dict:
    """What the checks ran on."""
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    return {
        "device": torch.cuda.get_device_name(device) if cuda else "CPU (no CUDA device)",
        "compute_capability": list(torch.cuda.get_device_capability(device)) if cuda else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "bfloat16_native": native_bfloat16(device),
        "skclusterfit": skclusterfit.__version__,
    }


def cuda_tests() -> dict:
    command = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, "tests/test_gpu.py"], cwd=ROOT, capture_output=True, text=True
    )
    lines = result.stdout.strip().splitlines()
    found = {"returncode": result.returncode, "summary": lines[-1] if lines else result.stderr}
    if result.returncode != 0:  # what failed, for the record and the rerun
        found["output_tail"] = (result.stdout + result.stderr)[-4000:]
    return found


def default_fit(
    n: int, probe: bool, epochs: dict, colour: bool = False, seed: int = 0, **params
) -> dict:
    """Time per stage of a default fit on the first ``n`` images, and its linear probe.

    ``colour=True`` fits and probes the colour 32x32 versions of the images that
    ``bench_colour.py`` studies on the CPU (its probe: 5,000 images a side).
    """
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    if colour:
        X = colourise(train.images[:n], 0)
        probe_train = colourise(train.images[50_000:55_000], 1)
        probe_test, test_target = colourise(test.images[:5_000], 2), test.target[:5_000]
    else:
        X = train.data[:n]
        probe_train, probe_test, test_target = train.data[50_000:55_000], test.data, test.target
    start = time.perf_counter()
    cf = ClusterFitTransformer(random_state=seed, **epochs, **params).fit(X)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    total = time.perf_counter() - start
    stages = {}
    for record in cf.history_:
        stages[record["stage"]] = stages.get(record["stage"], 0.0) + record["seconds"]
    result = {
        "n_images": n,
        "params": {**epochs, **params},
        "seconds": total,
        "stage_seconds": stages,
        "other_seconds": total - sum(stages.values()),
        "clusterer": repr(cf.clusterer_),
        "architecture": str(cf.architecture_),
        "final_accuracy": {r["stage"]: r["accuracy"] for r in cf.history_},
    }
    if probe:
        start = time.perf_counter()
        features_train, features_test = cf.transform(probe_train), cf.transform(probe_test)
        seconds = time.perf_counter() - start
        result["transform_images_per_second"] = (len(probe_train) + len(probe_test)) / seconds
        result["linear_probe"] = linear_probe_score(
            features_train, train.target[50_000:55_000], features_test, test_target
        )
    return result


def batch_quality(n: int, seeds: list, epochs: dict) -> dict:
    """Fit seconds and Fashion test probe at ``batch_size="auto"`` and at 128, per seed.

    ``benchmarks/bench_batch_size.py --fashion-10k`` measures the same
    protocol on the CPU at 128, 256 and 512 images a step.
    """
    found = {"auto_batch_size": auto_batch(_device()), "seeds": seeds, "rows": {}}
    for seed in seeds:
        for name, params in (("auto", {}), ("128", {"batch_size": 128})):
            fit = default_fit(n, True, epochs, seed=seed, **params)
            cell = found["rows"].setdefault(name, {"seconds": [], "linear_probe": []})
            cell["seconds"].append(round(fit["seconds"], 2))
            cell["linear_probe"].append(round(fit["linear_probe"], 4))
    return found


def photos_224(n_files: int) -> dict:
    """JPEG photos read for a GPU at 224x224 colour with DataLoader workers.

    ``perf_decode.py``'s photos and path as a fit on the GPU reads them (up to
    the batches resized and scaled on the GPU), with one worker per core but
    one, at most 8, against PIL decode alone in as many workers: what
    ResNet-18 at 224 px (``resnet18_224``) would wait for, reading from files.
    For comparison, uint8 batches resized by the workers instead.
    """
    workers = max(1, min(8, (os.cpu_count() or 2) - 1))
    with tempfile.TemporaryDirectory() as folder:
        paths = write_photos(Path(folder), n_files)
        alone = photo_rate(lambda: decode_in_workers(paths, workers), n_files, 2)
        package, on_host = (
            photo_rate(package_reads(paths, 224, 3, workers, way=way), n_files, 2)
            for way in (", for a GPU", ", uint8 resized on the host")
        )
    return {
        "n_files": n_files,
        "workers": workers,
        "decode_alone_per_second": alone,
        "package_for_gpu_per_second": package,
        "package / decode alone": package / alone,
        "resized_by_the_workers_per_second": on_host,
    }


def throughput(n: int, rounds: int) -> dict:
    device = _device()
    record = measure(n, rounds, device, auto_batch(device))
    record["ratios"] = {
        stage: {
            f"{side} / {baseline}": float(np.median(ratios(speeds, side, baseline)))
            for side, baseline, _ in COMPARISONS[stage]
            if side in speeds and baseline in speeds
        }
        for stage, speeds in (
            ("training", record["training_images_per_second"]),
            ("inference", record["inference_images_per_second"]),
        )
    }
    return record


def compile_speeds(quick: bool) -> dict:
    """``perf_compile.py`` on the device: eager against ``torch.compile`` and CUDA graphs."""
    if quick and _device().type != "cuda":
        # Compiling takes a minute at any size, and perf_compile.py --quick smoke-runs it.
        return {"skipped": "a smoke run without CUDA (perf_compile.py --quick runs it)"}
    n, rounds, both_precisions = (500, 1, False) if quick else (10_000, 3, True)
    return perf_compile.measure(n, rounds, _device(), both_precisions)


def torchrun(quick: bool) -> dict:
    """The launcher example on one process with NCCL (gloo without CUDA), then load()."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "model.pt"
        epochs = ["--epochs", "1", "--extractor-epochs", "1"] if quick else []
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=1",
            "examples/torchrun_clusterfit.py",
            "--data",
            "digits",
            *epochs,
            "--output",
            str(output),
        ]
        start = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        found = {"returncode": result.returncode, "seconds": seconds}
        found["backend"] = "nccl" if torch.cuda.is_available() else "gloo"
        if result.returncode != 0:
            found["output_tail"] = (result.stdout + result.stderr)[-2000:]
            return found
        model = skclusterfit.load(output)
        features = model.transform(skclusterfit.datasets.load_digits().data[:50])
        found["loaded_features_finite"] = bool(np.isfinite(features).all())
    return found


def sections(quick: bool) -> list:
    """(name, estimated seconds on an H100, function) in the order they run.

    The figures with a target come first, so that a run cut short by the
    budget still has them: the 10,000- and 60,000-image fits, the colour fit,
    the loop and ResNet-18 throughput, then the quality of the GPU's batch
    size over three seeds; the other checks after.
    """
    fit_epochs = {"extractor_epochs": 1, "max_epochs": 1} if quick else {}
    small, large = (1_000, 2_000) if quick else (10_000, 60_000)
    seeds = [0] if quick else [0, 1, 2]
    # The estimates are about 1.5 times what each took on one H200 at batch 128;
    # resnet18_224, batch_quality, photos_224, step_profile and compile have not
    # run on a GPU, and theirs are guesses.
    return [
        ("cuda_tests", 30, cuda_tests),
        (f"fit_{small}", 40, lambda: default_fit(small, True, fit_epochs)),
        (f"fit_{large}", 100, lambda: default_fit(large, False, fit_epochs)),
        # "auto" picks resnet18_small for colour 32x32 images on CUDA (the compact
        # CNN on the CPU, where bench_colour.py measured both): both, on the GPU.
        (f"colour_{small}", 90, lambda: default_fit(small, True, fit_epochs, colour=True)),
        # 30,000 images a side and round: at 10,000 a GPU round lasts under a second.
        ("throughput", 150, lambda: throughput(*((500, 1) if quick else (30_000, 5)))),
        # Large colour images: the loop's overhead where each step is long.
        (
            "resnet18_224",
            60,
            lambda: resnet_step_speeds(*((32, 64, 1) if quick else (2_000, 224, 3)), _device()),
        ),
        ("batch_quality", 150, lambda: batch_quality(small, seeds, fit_epochs)),
        ("photos_224", 30, lambda: photos_224(64 if quick else 800)),
        # Why a step takes what it takes: kernels launched, GPU busy share.
        ("step_profile", 30, lambda: step_profile(1_000 if quick else 10_000, _device())),
        # Whether torch.compile (and CUDA graphs) pay: compiled once each, so slow.
        (
            "compile",
            150,
            lambda: compile_speeds(quick),
        ),
        ("torchrun_nccl", 30, lambda: torchrun(quick)),
        (
            f"fit_{small}_float32",
            40,
            lambda: default_fit(small, True, fit_epochs, precision="float32"),
        ),
        (
            f"colour_{small}_cnn",
            90,
            lambda: default_fit(small, True, fit_epochs, colour=True, architecture="cnn"),
        ),
    ]


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def main():
    parser = common.arguments(__doc__)
    parser.add_argument("--out", default=str(common.RESULTS), help="folder for the results")
    parser.add_argument(
        "--sections",
        help="comma-separated names of the sections to run again, keeping the other "
        "sections' figures from the results already in --out",
    )
    args = parser.parse_args()
    budget = Budget(BUDGET_SECONDS)
    record = {**common.header(), **device_record(), "sections": {}}
    chosen = None
    if args.sections:
        chosen = args.sections.split(",")
        earlier = Path(args.out) / f"{'gpu_check_quick' if args.quick else 'gpu_check'}.json"
        first = json.loads(earlier.read_text())
        record["sections"] = first["sections"]
        record["notes"] = (
            f"sections {args.sections} were run again with this command; the others "
            f"come from `{first['command']}` on {first['date']}."
        )
    print(json.dumps(device_record()), flush=True)
    for name, estimate, run in sections(args.quick):
        if chosen is not None and name not in chosen:
            continue
        if not budget.allows(estimate):
            record["sections"][name] = {"skipped": "not enough of the time budget left"}
            continue
        start = time.perf_counter()
        try:
            result = run()
        except Exception as exc:  # one failing check must not hide the others' figures
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["section_seconds"] = time.perf_counter() - start
        record["sections"][name] = result
        print(name, json.dumps(result, default=str)[:2000], flush=True)
        common.write(record, "gpu_check", args.quick, markdown, Path(args.out), as_text=str)


def markdown(record: dict) -> str:
    lines = common.markdown_header("GPU check", record) + [
        f"Device: {record['device']} (compute capability {record['compute_capability']}), "
        f"torch {record['torch']}, CUDA {record['cuda']}, cuDNN {record['cudnn']}; "
        f"bfloat16 native: {record['bfloat16_native']}.",
        "",
    ]
    lines += _summary(record["sections"]) + ["", "## Every figure", ""]
    for name, result in record["sections"].items():
        lines += [f"### {name}", "", "```", json.dumps(result, indent=1, default=str), "```", ""]
    return "\n".join(lines)


def _summary(sections: dict) -> list[str]:
    """The figures a reader looks for first, as tables."""
    rows = []
    for name, result in sections.items():
        if name.startswith(("fit_", "colour_")) and "seconds" in result:
            stages = ", ".join(f"{k} {v:.0f}" for k, v in result["stage_seconds"].items())
            probe = result.get("linear_probe")
            rows.append(
                [
                    f"{result['n_images']}{' colour' if name.startswith('colour_') else ''}",
                    result.get("architecture", ""),
                    result["params"].get("precision", "auto"),
                    f"{result['seconds']:.0f}",
                    f"{stages}, other {result['other_seconds']:.0f}",
                    "" if probe is None else f"{probe:.3f}",
                ]
            )
    lines = ["## Fits", ""]
    lines += common.markdown_table(
        ["images", "network", "precision", "fit (s)", "stages (s)", "linear probe"], rows
    )
    speed = sections.get("throughput", {})
    if "ratios" in speed:
        lines += ["", "## Throughput ratios (median over rounds)", ""]
        rows = [
            [stage, pair, f"{value:.3f}"]
            for stage, pairs in speed["ratios"].items()
            for pair, value in pairs.items()
        ]
        lines += common.markdown_table(["stage", "ratio", "value"], rows)
    resnet = sections.get("resnet18_224", {})
    if "images_per_second" in resnet:
        ratio = resnet["package / bare, data on the device (median)"]
        lines += [
            "",
            f"ResNet-18, {resnet['side']}x{resnet['side']} colour, bfloat16: package / "
            f"bare loop with the data on the device {ratio:.3f} (target >= {resnet['target']}).",
        ]
    quality = sections.get("batch_quality", {})
    if "rows" in quality:
        lines += [
            "",
            f'## batch_size: "auto" ({quality["auto_batch_size"]} images a step) against '
            f"128, seeds {quality['seeds']}",
            "",
        ]
        rows = [
            [name, common.spread(cell["seconds"], 1), common.spread(cell["linear_probe"])]
            for name, cell in quality["rows"].items()
        ]
        lines += common.markdown_table(["batch_size", "fit (s)", "linear probe"], rows)
    photos = sections.get("photos_224", {})
    if "package_for_gpu_per_second" in photos:
        lines += [
            "",
            f"JPEG photos read for the GPU at 224x224 colour, {photos['workers']} workers: "
            f"{photos['package_for_gpu_per_second']:.0f}/s, "
            f"{photos['package / decode alone']:.2f} of PIL decode alone in as many workers"
            + (
                f"; resized by the workers instead: "
                f"{photos['resized_by_the_workers_per_second']:.0f}/s."
                if "resized_by_the_workers_per_second" in photos
                else "."
            ),
        ]
    step = sections.get("step_profile", {})
    if "milliseconds_per_step" in step:
        gpu = (
            ""
            if step["gpu_milliseconds_per_step"] is None
            else f", {step['cuda_kernels_per_step']:.0f} CUDA kernels taking "
            f"{step['gpu_milliseconds_per_step']:.2f} ms of GPU time (the GPU busy "
            f"{step['gpu_busy_share']:.0%} of the step)"
        )
        lines += [
            "",
            f"N_cf's training step ({step['batch_size']} images): "
            f"{step['milliseconds_per_step']:.2f} ms, "
            f"{step['host_operator_calls_per_step']:.0f} host operator calls{gpu}.",
        ]
    if "training" in sections.get("compile", {}):
        lines += ["", "## torch.compile", ""] + perf_compile.markdown_tables(
            sections["compile"], "###"
        )
    lines += ["", "## Other checks", ""]
    for name in ("cuda_tests", "torchrun_nccl"):
        result = sections.get(name, {})
        lines.append(f"- {name}: {json.dumps(result, default=str)[:300]}")
    return lines


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
