"""Linear-probe, few-shot and k-NN accuracy of ClusterFit features on the digits.

Each seed splits scikit-learn's 1,797 digits into 1,200 images for fitting
(labels unused except by the probes) and 597 held-out images for scoring, and
compares:

- raw pixels and PCA (32 components) of the pixels;
- a randomly initialised network (the ``"cnn"`` architecture, untrained);
- RotNet, the default extractor N_pre, trained for 10 epochs;
- RotNet trained for 30 epochs, as many as N_pre and N_cf together (the
  equal-epoch control; a RotNet epoch shows every image at four rotations and
  costs about four N_cf epochs, so this RotNet trains about twice as long as
  N_pre and N_cf together);
- ClusterFit from the random network (what retraining on any consistent
  pseudo-labels gives);
- ClusterFit from RotNet: the package's defaults.

Usage::

    python benchmarks/bench_digits.py            # 3 seeds, about 3 minutes on 2 cores
    python benchmarks/bench_digits.py --quick    # 1 seed, few epochs: a smoke run

Results go to ``benchmarks/results/digits.{json,md}`` (``--quick`` writes
``digits_quick.*``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import header, markdown_header, write
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from skclusterfit import ClusterFitTransformer
from skclusterfit.metrics import few_shot_score, knn_score, linear_probe_score


def representations(X_train, seed, epochs):
    """Functions mapping images to each compared representation, fitted on X_train."""
    n_pre, n_cf = epochs
    base = dict(random_state=seed, extractor_epochs=n_pre, max_epochs=n_cf)
    pca = PCA(32, random_state=seed).fit(X_train)

    def layer(model, name):
        return lambda X: model.set_params(feature_layer=name).transform(X)

    fitted = {
        "clusterfit": ClusterFitTransformer(**base).fit(X_train),
        "clusterfit_random": ClusterFitTransformer(**base, extractor="random").fit(X_train),
        "rotnet_long": ClusterFitTransformer(
            **{**base, "extractor_epochs": n_pre + n_cf, "max_epochs": 1}
        ).fit(X_train),
    }
    return {
        "raw pixels": lambda X: X,
        "PCA-32": pca.transform,
        "random network": layer(fitted["clusterfit_random"], "extractor"),
        f"RotNet ({n_pre} epochs)": layer(fitted["clusterfit"], "extractor"),
        f"RotNet ({n_pre + n_cf} epochs, as many as N_pre + N_cf)": layer(
            fitted["rotnet_long"], "extractor"
        ),
        "ClusterFit(random network)": layer(fitted["clusterfit_random"], "features"),
        "ClusterFit(RotNet)": layer(fitted["clusterfit"], "features"),
    }, {name: model.history_ for name, model in fitted.items()}


def run(seeds, epochs):
    X, y = load_digits(return_X_y=True)
    scores: dict[str, dict[str, list[float]]] = {}
    seconds = []
    for seed in seeds:
        order = np.random.RandomState(seed).permutation(len(X))
        train, test = order[:1200], order[1200:]
        start = time.perf_counter()
        reps, _ = representations(X[train], seed, epochs)
        seconds.append(time.perf_counter() - start)
        for name, transform in reps.items():
            F_train, F_test = transform(X[train]), transform(X[test])
            row = scores.setdefault(name, {"linear": [], "10-shot": [], "20-NN": []})
            row["linear"].append(linear_probe_score(F_train, y[train], F_test, y[test]))
            row["10-shot"].append(
                few_shot_score(F_train, y[train], F_test, y[test], random_state=seed)
            )
            row["20-NN"].append(knn_score(F_train, y[train], F_test, y[test]))
            print(seed, name, {k: round(v[-1], 4) for k, v in row.items()}, flush=True)
    return scores, seconds


def markdown(record):
    lines = markdown_header("Digits: linear, 10-shot and 20-NN probes", record) + [
        f"Seeds: {record['seeds']}; epochs (N_pre, N_cf): {record['epochs']}; "
        f"fit time of the three ClusterFit models per seed: "
        f"{np.mean(record['fit_seconds']):.0f}s",
        "",
        "Mean accuracy (min-max over seeds) on 597 held-out digits.",
        "",
        "| representation | linear probe | 10-shot probe | 20-NN |",
        "|---|---|---|---|",
    ]
    for name, row in record["scores"].items():
        cells = [f"{np.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" for v in row.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, few epochs")
    args = parser.parse_args()
    seeds, epochs = ([0], (2, 3)) if args.quick else ([0, 1, 2], (10, 20))
    scores, seconds = run(seeds, epochs)
    record = {
        **header("bench_digits.py", args.quick),
        "seeds": seeds,
        "epochs": list(epochs),
        "fit_seconds": seconds,
        "scores": scores,
    }
    write("digits", args.quick, record, markdown(record))


if __name__ == "__main__":
    main()
