"""Iterated ClusterFit: does clustering N_cf's features and training again help?

A round of ClusterFit takes an N_pre, clusters its features and trains a new
network N_cf on the clusters. A further round uses the previous round's N_cf as
its N_pre, through the public API:

    ClusterFitTransformer(extractor=previous.network_.features, ...)

(``network_.features`` maps [0, 1]-scaled images to the penultimate features,
the layer ``transform`` returns). Every round uses the package's defaults
(K=100, N_cf 20 epochs) and the seed's ``random_state``.

D_cf is the first 5,000 Fashion-MNIST training images of classes 0-4 (the
held-out-class protocol); targets are Fashion classes 0-4 (seen), 5-9 (held
out), MNIST and digits 28x28, with a linear, a 10-shot and a cosine 20-NN probe.
Rows: RotNet (10 epochs) and three rounds from it; an untrained network and
three rounds from it (can rounds replace a good N_pre?); and one round from
RotNet whose N_cf trains 40 epochs, as many as two rounds' N_cf together (the
equal-epoch control for round 2). For every round the JSON also records the
NMI of its clusters with D_cf's classes and with the previous round's clusters.

Usage::

    python benchmarks/bench_rounds.py           # 3 seeds, about 30 minutes
    python benchmarks/bench_rounds.py --quick   # 1 seed, 1,000 images, 300 per probe
"""

from __future__ import annotations

import _common as common
import numpy as np

from skclusterfit import ClusterFitTransformer
from skclusterfit.metrics import normalized_mutual_info_score

N_ROUNDS = 3


def representations(X, y, seed, n_pre, n_cf, n_clusters):
    """Fit every row's transformer; return row -> features function, and cluster NMIs."""
    base = dict(random_state=seed, max_epochs=n_cf, n_clusters=n_clusters)
    reps = {}
    nmi = {}
    for start, name in (("rotnet", "RotNet"), ("random", "random network")):
        fitted = ClusterFitTransformer(**base, extractor=start, extractor_epochs=n_pre).fit(X)
        reps[name] = common.feature_layer(fitted, "extractor")
        first = fitted
        previous = None
        for round_ in range(1, N_ROUNDS + 1):
            if round_ > 1:
                fitted = ClusterFitTransformer(**base, extractor=fitted.network_.features).fit(X)
            row = f"{name}, round {round_}"
            reps[row] = common.feature_layer(fitted, "features")
            nmi[row] = {
                "classes": round(normalized_mutual_info_score(y, fitted.labels_), 4),
                "previous round": None
                if previous is None
                else round(normalized_mutual_info_score(previous, fitted.labels_), 4),
            }
            previous = fitted.labels_
        if start == "rotnet":
            # Same N_pre and clusters as round 1 (same seed), N_cf trained twice as long.
            long = ClusterFitTransformer(
                **{**base, "max_epochs": 2 * n_cf}, extractor=first.extractor_
            ).fit(X)
            reps[f"RotNet, round 1, N_cf {2 * n_cf} epochs"] = common.feature_layer(
                long, "features"
            )
    return reps, nmi


def main():
    quick = common.arguments(__doc__).parse_args().quick
    settings, X, y, data = common.held_out_study(quick)
    _, seeds, n_pre, n_cf, n_clusters = settings
    scores: dict = {}
    nmis: dict = {}
    fit_seconds = []
    for seed in seeds:
        (reps, nmi), seconds = common.timed(representations, X, y, seed, n_pre, n_cf, n_clusters)
        fit_seconds.append(seconds)
        for row, values in nmi.items():
            for key, value in values.items():
                nmis.setdefault(row, {}).setdefault(key, []).append(value)
        common.probe_all(scores, reps, data, seed)
        # Written after every seed: an interrupted run keeps the seeds it finished.
        fields = common.study_fields(settings, fit_seconds, scores, cluster_nmi=nmis)
        record = common.save("rounds", quick, fields, markdown)
        plot(record, quick)


def markdown(record):
    lines = common.markdown_header("Iterated ClusterFit: rounds", record) + [
        f"D_cf: {record['n_images']} Fashion-MNIST training images of classes 0-4; seeds "
        f"{record['seeds']}; epochs (N_pre, N_cf) {record['epochs']}; "
        f"K={record['n_clusters']}; round r+1 clusters round r's N_cf features. Fitting "
        f"every row took {np.mean(record['fit_seconds']):.0f} s per seed. Mean accuracy "
        "(min-max over seeds).",
        "",
        "## Clusters of each round (NMI on D_cf)",
        "",
    ]
    nmi = [
        [row, *("-" if None in v else common.spread(v) for v in values.values())]
        for row, values in record["cluster_nmi"].items()
    ]
    lines += common.markdown_table(["round", "with the classes", "with the previous round"], nmi)
    return "\n".join(lines + [""] + common.score_tables(record["scores"]))


def plot(record, quick):
    """Linear and 10-shot accuracy against the round, one panel per target."""
    targets = list(record["scores"])
    fig, axes = common.pyplot().subplots(
        2, len(targets), figsize=(4 * len(targets), 6), sharex=True
    )
    rounds = list(range(N_ROUNDS + 1))
    for column, target in enumerate(targets):
        rows = record["scores"][target]
        for r, probe in enumerate(("linear", "10-shot")):
            ax = axes[r, column]
            for name in ("RotNet", "random network"):
                keys = [name] + [f"{name}, round {i}" for i in rounds[1:]]
                means = [np.mean(rows[k][probe]) for k in keys]
                ax.plot(rounds, means, marker="o", label=f"from {name}")
            long = next(k for k in rows if "epochs" in k)
            ax.plot([2], [np.mean(rows[long][probe])], marker="*", ls="", ms=10, label=long)
            ax.set_title(f"{target}: {probe}", fontsize=9)
            ax.set_xticks(rounds)
        axes[1, column].set_xlabel("round (0 = N_pre)")
    axes[0, 0].set_ylabel("linear probe accuracy")
    axes[1, 0].set_ylabel("10-shot accuracy")
    axes[0, 0].legend(fontsize=7)
    common.save_figure(fig, "rounds", quick)


if __name__ == "__main__":
    main()
