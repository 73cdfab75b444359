"""Which settings matter: one change at a time from the package's defaults.

D_cf is the first 5,000 Fashion-MNIST training images of classes 0-4 (the
held-out-class protocol); targets are Fashion classes 0-4 (seen), 5-9 (held
out), MNIST and digits 28x28, with a linear, a 10-shot and a cosine 20-NN probe.

Per seed, one RotNet N_pre (10 epochs) is trained and shared, and every row
changes one setting of ClusterFit from it with the same ``random_state`` (so
rows that do not change the clustering get the same clusters): N_cf's
augmentation ("light", "none"), cluster-balanced sampling, PCA whitening to 64
dimensions before k-means, N_cf trained 10 or 40 epochs instead of 20. One
more row clusters a RotNet trained 30 epochs instead of 10 (how long N_pre
trains). Both RotNets' own features are rows too.

Usage::

    python benchmarks/bench_levers.py           # 3 seeds, about 45 minutes
    python benchmarks/bench_levers.py --quick   # 1 seed, 1,000 images, 300 per probe
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import (
    feature_layer,
    header,
    held_out_protocol,
    markdown_header,
    probe_all,
    score_tables,
    study_settings,
    write,
)

from skclusterfit import ClusterFitTransformer

DEFAULTS = "ClusterFit, defaults"


def representations(X, seed, n_pre, n_cf, n_clusters):
    """Row -> features function, every ClusterFit row one change from the defaults."""
    base = dict(random_state=seed, max_epochs=n_cf, n_clusters=n_clusters)
    defaults = ClusterFitTransformer(**base, extractor_epochs=n_pre).fit(X)
    rotnet = defaults.extractor_
    changes = {
        "augmentation='light'": dict(augmentation="light"),
        "augmentation='none'": dict(augmentation="none"),
        "balanced_sampling=True": dict(balanced_sampling=True),
        "pca_components=64 (whitened)": dict(pca_components=64),
        f"N_cf {n_cf // 2} epochs": dict(max_epochs=n_cf // 2),
        f"N_cf {2 * n_cf} epochs": dict(max_epochs=2 * n_cf),
    }
    reps = {
        f"RotNet ({n_pre} epochs)": feature_layer(defaults, "extractor"),
        DEFAULTS: feature_layer(defaults, "features"),
    }
    for name, change in changes.items():
        fitted = ClusterFitTransformer(**{**base, **change}, extractor=rotnet).fit(X)
        reps[f"ClusterFit, {name}"] = feature_layer(fitted, "features")
    longer = ClusterFitTransformer(**base, extractor_epochs=3 * n_pre).fit(X)
    reps[f"RotNet ({3 * n_pre} epochs)"] = feature_layer(longer, "extractor")
    reps[f"ClusterFit, N_pre RotNet {3 * n_pre} epochs"] = feature_layer(longer, "features")
    return reps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, seeds, n_pre, n_cf, n_clusters = study_settings(args.quick)
    X, _, data = held_out_protocol(n, args.quick)
    scores: dict = {}
    fit_seconds = []
    for seed in seeds:
        start = time.perf_counter()
        reps = representations(X, seed, n_pre, n_cf, n_clusters)
        fit_seconds.append(time.perf_counter() - start)
        probe_all(scores, reps, data, seed)
        # Written after every seed: an interrupted run keeps the seeds it finished.
        record = {
            **header("bench_levers.py", args.quick),
            "n_images": n,
            "seeds": seeds[: len(fit_seconds)],
            "epochs": [n_pre, n_cf],
            "n_clusters": n_clusters,
            "fit_seconds": fit_seconds,
            "scores": scores,
        }
        write("levers", args.quick, record, markdown(record))


def markdown(record):
    lines = markdown_header("Levers: one setting changed at a time", record) + [
        f"D_cf: {record['n_images']} Fashion-MNIST training images of classes 0-4; seeds "
        f"{record['seeds']}; defaults: RotNet N_pre {record['epochs'][0]} epochs, "
        f"K={record['n_clusters']}, N_cf {record['epochs'][1]} epochs with strong "
        f"augmentation. Fitting every row took {np.mean(record['fit_seconds']):.0f} s per "
        "seed. Mean accuracy (min-max over seeds).",
        "",
    ]
    return "\n".join(lines + score_tables(record["scores"]))


if __name__ == "__main__":
    main()
