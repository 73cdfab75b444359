"""Run benchmark studies by name: ``python benchmarks/run.py STUDY [--quick] [flags]``.

A study is one script run with its flags; its name is the stem of the results
it writes (``results/<name>.json`` and ``.md``, ``<name>_quick.*`` in quick
mode, which are not committed). Flags the runner does not know are passed on
to every study it runs. Each study runs in its own process, as if started
from the repository root, so that its results record the script's own command.

Usage::

    python benchmarks/run.py --list                 # the studies and their commands
    python benchmarks/run.py label_noise --quick    # one study, as a smoke run
    python benchmarks/run.py --all --quick          # every study's smoke run (CI)
    python benchmarks/run.py perf_training --device cuda
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Name -> script and flags; registering a study is one line. The names are
# the stems of the results the studies write; --all runs them in this order.
STUDIES = {
    "digits": ("bench_digits.py",),
    "selfsupervised": ("bench_selfsupervised.py",),
    "selfsupervised_heldout": ("bench_selfsupervised.py", "--held-out-classes"),
    "label_noise": ("bench_label_noise.py",),
    "label_noise_options": ("bench_label_noise.py", "--whitening-and-stages"),
    "n_clusters": ("bench_n_clusters.py",),
    "n_clusters_options": ("bench_n_clusters.py", "--package-defaults"),
    "rounds": ("bench_rounds.py",),
    "levers": ("bench_levers.py",),
    "perf_clustering": ("perf_clustering.py",),
    "perf_training": ("perf_training.py",),
    "perf_cpu": ("perf_cpu.py",),
    "perf_scaling": ("perf_scaling.py",),
    "perf_scaling_default": ("perf_scaling.py", "--default-fit"),
    "perf_memory_files": ("perf_memory_files.py",),
    "perf_decode": ("perf_decode.py",),
    "perf_compile": ("perf_compile.py",),
    "perf_profile": ("perf_profile.py",),
    "precision": ("bench_precision.py",),
    "precision_diagnosis": ("bench_precision.py", "--diagnosis"),
    "rotations": ("bench_rotations.py",),
    "gpu_check": ("gpu_check.py",),
    "colour": ("bench_colour.py",),
    "colour_default_fit": ("bench_colour.py", "--default-fit"),
    "predict": ("bench_predict.py",),
    "heads": ("bench_heads.py",),
    "features": ("bench_features.py",),
    "features_default_fit": ("bench_features.py", "--default-fit"),
    "grid_cache": ("bench_grid_cache.py",),
    "peers": ("bench_peers.py",),
    "strong_npre": ("bench_strong_npre.py",),
    "strong_npre_networks": ("bench_strong_npre_networks.py",),
    "large_images": ("bench_large_images.py",),
    "fashion_10k": ("bench_fashion_10k.py",),
    "batch_size": ("bench_batch_size.py",),
    "batch_size_10k": ("bench_batch_size.py", "--fashion-10k"),
    "frontier_avx2": ("bench_frontier.py", "--cpu", "avx2"),
    "frontier_heldout_avx2": ("bench_frontier.py", "--held-out-classes", "--cpu", "avx2"),
    "neighbors": ("bench_neighbors.py",),
    "perf_write_features": ("perf_write_features.py",),
}


def command(name: str, passed_on: list[str]) -> list[str]:
    """The command line that runs study ``name`` with the flags ``passed_on``."""
    script, *flags = STUDIES[name]
    return ["python", f"benchmarks/{script}", *flags, *passed_on]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="*", metavar="STUDY", help="studies to run, by name")
    parser.add_argument("--all", action="store_true", help="run every study, in turn")
    parser.add_argument("--list", action="store_true", help="list the studies and stop")
    parser.add_argument("--quick", action="store_true", help="smoke runs (results/*_quick.*)")
    args, passed_on = parser.parse_known_args(argv)
    if args.list:
        for name in STUDIES:
            print(f"{name:24} {' '.join(command(name, []))}")
        return 0
    unknown = [name for name in args.studies if name not in STUDIES]
    if unknown:
        parser.error(f"no study named {', '.join(unknown)}; --list lists them")
    if not (args.studies or args.all):
        parser.error("name a study (--list lists them), or give --all")
    passed_on = ["--quick", *passed_on] if args.quick else passed_on
    for name in STUDIES if args.all else args.studies:
        line = command(name, passed_on)
        print(f"{name}: {' '.join(line)}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        # The interpreter running the runner, from the repository root.
        done = subprocess.run([sys.executable, *line[1:]], cwd=HERE.parent)
        seconds = time.perf_counter() - start
        if done.returncode:
            print(f"{name} failed (exit {done.returncode})", file=sys.stderr)
            return done.returncode
        print(f"{name}: done in {seconds:.0f} s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
