"""Features from several stages of the networks, and PCA whitening before k-means.

``feature_stages`` makes ``transform`` return, besides the usual pooled
features of the last stage, the spatially averaged outputs of earlier stages
(a stage: the layers working at one spatial size). It is a choice made at
``transform`` time, so one fit per seed gives every row of a network: 1, 2 and
3 stages of RotNet (N_pre, the same feature recipe as N_cf, the control the
target is about), of ClusterFit(RotNet), of ClusterFit from an untrained
network (the control for RotNet's contribution) and of ClusterFit(RotNet)
with ``pca_components=64`` (PCA whitening of the embeddings before k-means,
the one clustering lever that moved transfer in the levers study).

D_cf is the first 5,000 Fashion-MNIST training images of classes 0-4 (the
held-out-class protocol); targets are Fashion classes 0-4 (seen), 5-9 (held
out), MNIST and digits 28x28, with a linear, a 10-shot and a cosine 20-NN
probe; package defaults otherwise (RotNet 10 epochs, K=100, N_cf 20 epochs),
except that rows without "PCA-64 whitened" cluster unwhitened features.

``--default-fit``: ``fit`` with every default on the first 10,000 Fashion-MNIST
training images, three seeds, and the linear probe of each feature recipe on
the Fashion-MNIST test set (probe trained on training images 50,000-54,999),
for N_cf and for RotNet. Target: 88% for ClusterFit.

Usage::

    python benchmarks/bench_features.py                # 3 seeds, about 40 minutes
    python benchmarks/bench_features.py --default-fit  # 3 seeds, about 10 minutes
    python benchmarks/bench_features.py --quick        # 1 seed, small sizes
"""

from __future__ import annotations

import _common as common
import numpy as np

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_fashion_mnist
from skclusterfit.metrics import linear_probe_score

STAGES = (1, 2, 3)


def recipe(model, layer: str, stages: int):
    """A function giving ``model``'s features at ``feature_layer=layer`` from ``stages``."""
    return lambda A: model.set_params(feature_layer=layer, feature_stages=stages).transform(A)


def representations(X, seed, settings, targets):
    """Row -> features function, for every network and number of stages."""
    _, _, n_pre, n_cf, n_clusters = settings
    base = dict(
        random_state=seed,
        n_clusters=n_clusters,
        max_epochs=n_cf,
        extractor_epochs=n_pre,
        pca_components=None,  # the setting compared here, named whatever the default
    )
    rotnet = ClusterFitTransformer(**base).fit(X)
    untrained = ClusterFitTransformer(**base, extractor="random").fit(X)
    whitened = ClusterFitTransformer(**{**base, "pca_components": 64}).fit(X)
    reps = {"raw pixels": lambda A: A.astype(np.float32)}
    for stages in STAGES:
        label = f"{stages} stage{'s' if stages > 1 else ''}"
        reps[f"RotNet, {label}"] = recipe(rotnet, "extractor", stages)
        reps[f"ClusterFit(RotNet), {label}"] = recipe(rotnet, "features", stages)
        reps[f"ClusterFit(untrained), {label}"] = recipe(untrained, "features", stages)
        reps[f"ClusterFit(RotNet, PCA-64 whitened), {label}"] = recipe(whitened, "features", stages)
    return reps


def default_fit(quick: bool) -> None:
    """Fashion-MNIST test linear probe of default fits, by feature recipe."""
    n, seeds, probe_n = (1_000, [0], 300) if quick else (10_000, [0, 1, 2], 5_000)
    epochs = {"extractor_epochs": 1, "max_epochs": 1} if quick else {}
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    probe_rows = slice(50_000, 50_000 + probe_n)
    A_train, y_train = train.data[probe_rows], train.target[probe_rows]
    A_test, y_test = test.data[: 2 * probe_n], test.target[: 2 * probe_n]
    scores: dict = {}
    fit_seconds = []
    for seed in seeds:
        model, seconds = common.timed(
            ClusterFitTransformer(random_state=seed, **epochs).fit, train.data[:n]
        )
        fit_seconds.append(seconds)
        for layer, name in (("features", "ClusterFit(RotNet)"), ("extractor", "RotNet")):
            for stages in STAGES:
                features = recipe(model, layer, stages)
                score = linear_probe_score(features(A_train), y_train, features(A_test), y_test)
                scores.setdefault(name, {}).setdefault(str(stages), []).append(round(score, 4))
                print(seed, name, stages, score, flush=True)
        fields = {"n_images": n, "seeds": seeds[: len(fit_seconds)], "fit_seconds": fit_seconds}
        common.save("features_default_fit", quick, {**fields, "scores": scores}, fit_markdown)


def main():
    args = common.arguments(
        __doc__, default_fit="Fashion test linear probe of default 10k fits"
    ).parse_args()
    if args.default_fit:
        default_fit(args.quick)
    else:
        common.run_held_out_study("features", args.quick, representations, markdown)


def markdown(record):
    lines = common.markdown_header("Features from several stages; PCA whitening", record) + [
        f"{common.held_out_description(record)} Package defaults otherwise, except that "
        "rows without PCA-64 cluster unwhitened features; rows name the network and how "
        "many stages ``transform`` returns features from. Mean accuracy (min-max over seeds).",
        "",
    ]
    return "\n".join(lines + common.score_tables(record["scores"]))


def fit_markdown(record):
    lines = common.markdown_header("Default fits: Fashion-MNIST test linear probe", record)
    lines += [
        f"`fit` with every default on the first {record['n_images']:,} Fashion-MNIST "
        f"training images, seeds {record['seeds']}; fit {np.mean(record['fit_seconds']):.0f} s "
        "on average. Linear probe trained on training images 50,000-54,999, tested on the "
        "test set; mean (min-max over seeds). Target for ClusterFit: 0.88.",
        "",
    ]
    rows = [
        [name, *(common.spread(by_stages[str(s)]) for s in STAGES)]
        for name, by_stages in record["scores"].items()
    ]
    header = ["network", *(f"{s} stage{'s' if s > 1 else ''}" for s in STAGES)]
    return "\n".join(lines + common.markdown_table(header, rows) + [""])


if __name__ == "__main__":
    main()
