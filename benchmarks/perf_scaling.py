"""End-to-end ``fit`` time and peak memory against the number of images.

Fits ClusterFitTransformer (defaults, but one epoch per trained stage, so that
60,000 images fit in minutes on two cores) on the first N Fashion-MNIST
training images, N in {5k, 10k, 20k, 40k, 60k}, each in a fresh process.
Reported per N: wall time of the whole fit and of each stage (RotNet training
and N_cf training from ``history_``; the rest is extraction, clustering and
set-up), and the process's peak resident memory above its memory just before
``fit`` (with the uint8 images already loaded).

Targets: time linear in N (the fitted exponent of time ~ N^a is reported) and
memory above the data bounded apart from the per-image feature arrays (MB per
10k images is reported).

``--default-fit`` times fits with every default (10 RotNet and 20 N_cf
epochs) on 10,000 and 60,000 images instead; target: the 60,000-image fit in
under 12 minutes on two CPU cores.

Usage::

    python benchmarks/perf_scaling.py                 # N = 5k .. 60k
    python benchmarks/perf_scaling.py --default-fit   # default fits, N = 10k, 60k
    python benchmarks/perf_scaling.py --quick         # N = 1k, 2k
"""

from __future__ import annotations

import json
import subprocess
import sys

import _common as common
import numpy as np

CHILD = """
import json, resource, sys, time
from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_fashion_mnist

def rss_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

n, epochs = int(sys.argv[1]), json.loads(sys.argv[2])
X = load_fashion_mnist("train").data[:n]
before = rss_mb("VmRSS")
start = time.perf_counter()
cf = ClusterFitTransformer(**epochs, random_state=0).fit(X)
total = time.perf_counter() - start
stage = {}
for h in cf.history_:
    stage[h["stage"]] = stage.get(h["stage"], 0.0) + h["seconds"]
print(json.dumps({
    "n": n, "seconds": total, "rotnet_seconds": stage["rotnet"],
    "clusterfit_seconds": stage["clusterfit"],
    "other_seconds": total - stage["rotnet"] - stage["clusterfit"],
    "rss_before_mb": before, "peak_rss_mb": rss_mb("VmHWM"),
    "data_mb": X.nbytes / 1e6, "clusterer": str(cf.clusterer_),
}))
"""


ONE_EPOCH = {"extractor_epochs": 1, "max_epochs": 1}


def fit_in_child(n: int, epochs: dict) -> dict:
    """Time and memory of one fit on ``n`` images, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), json.dumps(epochs)],
        capture_output=True,
        text=True,
        check=True,
    )
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print(row, flush=True)
    return row


def default_fits(quick: bool) -> None:
    sizes, epochs = ([1_000], ONE_EPOCH) if quick else ([10_000, 60_000], {})
    rows = [fit_in_child(n, epochs) for n in sizes]
    common.save("perf_scaling_default", quick, {"rows": rows}, default_markdown)


def main():
    args = common.arguments(__doc__, default_fit="time default fits, 10k and 60k").parse_args()
    if args.default_fit:
        default_fits(args.quick)
        return
    quick = args.quick
    sizes = [1_000, 2_000] if quick else [5_000, 10_000, 20_000, 40_000, 60_000]
    rows = [fit_in_child(n, ONE_EPOCH) for n in sizes]
    n = np.array([r["n"] for r in rows], dtype=float)
    seconds = np.array([r["seconds"] for r in rows])
    growth = np.array([r["peak_rss_mb"] - r["rss_before_mb"] for r in rows])
    exponent, _ = np.polyfit(np.log(n), np.log(seconds), 1)
    per_10k, fixed = np.polyfit(n / 10_000, growth, 1)
    fields = {
        "rows": rows,
        "time_exponent": float(exponent),
        "memory_mb_per_10k_images": float(per_10k),
        "memory_fixed_mb": float(fixed),
    }
    common.save("perf_scaling", quick, fields, markdown)


def markdown(record):
    lines = common.markdown_header("End-to-end fit: time and memory against N", record) + [
        "Defaults with one epoch per trained stage; each N in a fresh process.",
        "",
    ]
    columns = ["N", "fit (s)", "RotNet (s)", "N_cf (s)", "rest (s)"]
    columns += ["peak RSS above start (MB)", "uint8 data (MB)", "clusterer"]
    seconds = ("seconds", "rotnet_seconds", "clusterfit_seconds", "other_seconds")
    rows = [
        [r["n"], *(f"{r[key]:.1f}" for key in seconds)]
        + [f"{r['peak_rss_mb'] - r['rss_before_mb']:.0f}", f"{r['data_mb']:.0f}", r["clusterer"]]
        for r in record["rows"]
    ]
    lines += common.markdown_table(columns, rows) + [
        "",
        f"Time grows as N^{record['time_exponent']:.2f} (target: linear, exponent 1).  ",
        f"Memory above the start grows by {record['memory_mb_per_10k_images']:.1f} MB per "
        f"10k images on top of {record['memory_fixed_mb']:.0f} MB.",
    ]
    return "\n".join(lines) + "\n"


def default_markdown(record):
    lines = common.markdown_header("Default fits: time per stage", record) + [
        "Every default of ClusterFitTransformer (RotNet 10 epochs, N_cf 20 epochs, "
        "precision='auto'); each N in a fresh process. Target: 60,000 images in under "
        "12 minutes.",
        "",
    ]
    rows = []
    for r in record["rows"]:
        rows.append(
            [
                r["n"],
                f"{r['seconds']:.0f} ({r['seconds'] / 60:.1f} min)",
                f"{r['rotnet_seconds']:.0f}",
                f"{r['clusterfit_seconds']:.0f}",
                f"{r['other_seconds']:.0f}",
                r["clusterer"],
            ]
        )
    columns = ["N", "fit (s)", "RotNet (s)", "N_cf (s)", "rest (s)", "clusterer"]
    return "\n".join(lines + common.markdown_table(columns, rows)) + "\n"


if __name__ == "__main__":
    main()
