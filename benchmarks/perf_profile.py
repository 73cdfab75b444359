"""Where the time of one ``fit`` goes: a torch.profiler table of its costliest operators.

Profiles ClusterFitTransformer with its defaults but one epoch per trained
stage, on 5,000 Fashion-MNIST training images, and records the operators with
the most CPU time of their own, and the share of the whole fit each takes.

:func:`step_profile` (``gpu_check.py`` runs it on a GPU) looks at one training
step instead: where a step of N_cf's stage spends its time on a device, and,
on CUDA, how many kernels it launches and how busy they keep the GPU.

Usage::

    python benchmarks/perf_profile.py           # 5,000 images
    python benchmarks/perf_profile.py --quick   # 1,000 images
"""

from __future__ import annotations

import math
import time

import _common as common
import numpy as np
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from skclusterfit import ClusterFitTransformer
from skclusterfit._testing import ArrayImages, ClassIds, build_network, make_config, train
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


def step_profile(n: int, device: torch.device) -> dict:
    """One epoch of N_cf's training stage (defaults: strong augmentation, "auto"
    batch and precision, the compact CNN) on ``n`` Fashion-MNIST images, 100
    random pseudo-labels.

    After a warm-up epoch: one epoch timed alone (seconds per step), then one
    under torch.profiler. Recorded per step: operator calls on the host (every
    level: an operator and those it calls), and on CUDA the kernels and copies
    run on the device and the GPU time they take; the GPU's busy share, that
    GPU time over the timed epoch's wall time (an estimate from two epochs,
    setup included: a small share says the host's launching bounds the step);
    and the operators with the most host time of their own.
    """
    images = load_fashion_mnist("train").images[:n, :, :, None]
    targets = ClassIds(np.random.RandomState(0).randint(0, 100, n))
    params = ClusterFitTransformer().get_params()
    config = make_config(params, epochs=1, device=device, image_shape=(1, 28, 28))
    network = build_network("cnn", (1, 28, 28), 100, [0.286], [0.353])

    def epoch(seed):
        generator = torch.Generator().manual_seed(seed)
        source = ArrayImages(images, (0.0, 255.0))
        train(network, source, targets, config=config, generator=generator, stage="clusterfit")
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    epoch(0)
    steps = math.ceil(n / config.batch_size)
    _, seconds = common.timed(epoch, 1)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        epoch(2)
    host = [e for e in prof.key_averages() if e.device_type == DeviceType.CPU]
    # Device activities (kernels, copies), as torch's own profiler table sums them.
    kernels = [
        e
        for e in prof.events()
        if e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False)
    ]
    gpu_seconds = sum(e.self_device_time_total for e in kernels) / 1e6
    top = sorted(host, key=lambda e: e.self_cpu_time_total, reverse=True)[:15]
    return {
        "n_images": n,
        "batch_size": config.batch_size,
        "steps": steps,
        "milliseconds_per_step": 1000 * seconds / steps,
        "host_operator_calls_per_step": sum(e.count for e in host) / steps,
        "cuda_kernels_per_step": len(kernels) / steps if device.type == "cuda" else None,
        "gpu_milliseconds_per_step": 1000 * gpu_seconds / steps if kernels else None,
        "gpu_busy_share": gpu_seconds / seconds if device.type == "cuda" else None,
        "top_host_operators": [
            {
                "operator": e.key,
                "self_cpu_ms_per_step": e.self_cpu_time_total / 1000 / steps,
                "calls_per_step": e.count / steps,
            }
            for e in top
        ],
    }


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
