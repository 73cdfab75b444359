"""Where the time of one ``fit`` goes: a torch.profiler table of its costliest operators.

Profiles ClusterFitTransformer with its defaults but one epoch per trained
stage, on 5,000 Fashion-MNIST training images, and records the operators with
the most CPU time of their own, and the share of the whole fit each takes.

Usage::

    python benchmarks/perf_profile.py           # 5,000 images
    python benchmarks/perf_profile.py --quick   # 1,000 images
"""

from __future__ import annotations

import time

import _common as common
from torch.profiler import ProfilerActivity, profile

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_fashion_mnist


def main():
    quick = common.arguments(__doc__).parse_args().quick
    n = 1_000 if quick else 5_000
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
    fields = {
        "n_images": n,
        "fit_seconds": seconds,
        "top_operators": top,
    }
    common.save("perf_profile", quick, fields, markdown)


def markdown(record):
    lines = common.markdown_header("Profile of one fit", record) + [
        f"{record['n_images']} Fashion-MNIST images, defaults with one epoch per trained "
        f"stage; fit took {record['fit_seconds']:.1f} s under the profiler. Operators by "
        f"CPU time of their own (share of all operator time).",
        "",
    ]
    rows = [
        [f"`{r['operator']}`", f"{r['self_cpu_seconds']:.2f}", f"{r['share']:.1%}", r["calls"]]
        for r in record["top_operators"]
    ]
    columns = ["operator", "self CPU (s)", "share", "calls"]
    return "\n".join(lines + common.markdown_table(columns, rows)) + "\n"


if __name__ == "__main__":
    main()
