"""Where the time of one ``fit`` goes: a torch.profiler table of its costliest operators.

Profiles ClusterFitTransformer with its defaults but one epoch per trained
stage, on 5,000 Fashion-MNIST training images, and records the operators with
the most CPU time of their own, and the share of the whole fit each takes.

Usage::

    python benchmarks/perf_profile.py           # 5,000 images
    python benchmarks/perf_profile.py --quick   # 1,000 images
"""

from __future__ import annotations

import argparse
import time

from _common import header, markdown_header, write
from torch.profiler import ProfilerActivity, profile

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_fashion_mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 1_000 if args.quick else 5_000
    X = load_fashion_mnist("train").data[:n]
    cf = ClusterFitTransformer(extractor_epochs=1, max_epochs=1, random_state=0)
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        cf.fit(X)
    seconds = time.perf_counter() - start
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total_us = sum(e.self_cpu_time_total for e in events)
    top = [
        {
            "operator": e.key,
            "self_cpu_seconds": e.self_cpu_time_total / 1e6,
            "share": e.self_cpu_time_total / total_us,
            "calls": e.count,
        }
        for e in events[:15]
    ]
    record = {
        **header("perf_profile.py", args.quick),
        "n_images": n,
        "fit_seconds": seconds,
        "top_operators": top,
    }
    write("perf_profile", args.quick, record, markdown(record))


def markdown(record):
    lines = markdown_header("Profile of one fit", record) + [
        f"{record['n_images']} Fashion-MNIST images, defaults with one epoch per trained "
        f"stage; fit took {record['fit_seconds']:.1f} s under the profiler. Operators by "
        f"CPU time of their own (share of all operator time).",
        "",
        "| operator | self CPU (s) | share | calls |",
        "|---|---|---|---|",
    ]
    for row in record["top_operators"]:
        lines.append(
            f"| `{row['operator']}` | {row['self_cpu_seconds']:.2f} | {row['share']:.1%} | "
            f"{row['calls']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
