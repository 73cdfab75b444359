"""Linear-probe, few-shot and k-NN accuracy of ClusterFit features on the digits.

Each seed splits scikit-learn's 1,797 digits into 1,200 images for fitting
(labels unused except by the probes) and 597 held-out images for scoring, and
compares:

- raw pixels and PCA (32 components) of the pixels;
- a randomly initialised network (the ``"cnn"`` architecture, untrained);
- RotNet, the default extractor N_pre, trained for 10 epochs;
- RotNet trained for 30 epochs, as many as N_pre and N_cf together (the
  equal-epoch control; a RotNet epoch shows every image at two of its four
  rotations (``rotations_per_image=2``) and costs about two N_cf epochs, so
  this RotNet trains about 1.5 times as long as N_pre and N_cf together);
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

import _common as common
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

# The one target: each seed's held-out digits, probed after training on its others.
TARGET = "597 held-out digits"


def representations(X_train, seed, epochs):
    """Functions mapping images to each compared representation, fitted on X_train."""
    pca = PCA(32, random_state=seed).fit(X_train)
    networks = common.network_rows(X_train, seed, *epochs)
    return {"raw pixels": lambda X: X, "PCA-32": pca.transform, **networks}


def run(seeds, epochs):
    """Probe scores of every representation (row -> probe -> one value per seed), fit times."""
    X, y = load_digits(return_X_y=True)
    scores: dict = {}
    seconds = []
    for seed in seeds:
        order = np.random.RandomState(seed).permutation(len(X))
        train, test = order[:1200], order[1200:]
        reps, fit_seconds = common.timed(representations, X[train], seed, epochs)
        seconds.append(fit_seconds)
        common.probe_all(scores, reps, {TARGET: (X[train], y[train], X[test], y[test])}, seed)
    return scores[TARGET], seconds


def markdown(record):
    lines = common.markdown_header("Digits: linear, 10-shot and 20-NN probes", record) + [
        f"Seeds: {record['seeds']}; epochs (N_pre, N_cf): {record['epochs']}; "
        f"fit time of the three ClusterFit models per seed: "
        f"{np.mean(record['fit_seconds']):.0f}s",
        "",
        "Mean accuracy (min-max over seeds) on 597 held-out digits.",
        "",
    ]
    return "\n".join(lines + common.score_tables({TARGET: record["scores"]}))


def main():
    quick = common.arguments(__doc__).parse_args().quick
    seeds, epochs = ([0], (2, 3)) if quick else ([0, 1, 2], (10, 20))
    scores, seconds = run(seeds, epochs)
    fields = {"seeds": seeds, "epochs": list(epochs), "fit_seconds": seconds, "scores": scores}
    common.save("digits", quick, fields, markdown)


if __name__ == "__main__":
    main()
