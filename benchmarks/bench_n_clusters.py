"""How many clusters: a GridSearchCV over ``cf__n_clusters``, the way a user would run it.

D is the first 5,000 Fashion-MNIST training images of classes 0-4 (the
held-out-class protocol: no network sees classes 5-9), with their labels. One
RotNet N_pre (10 epochs) is trained on D and shared by every fit, so the search
varies K alone. The search is ``GridSearchCV`` (3 folds) over K in {10, 25, 50,
100, 250, 500, 1000} of

    Pipeline([("cf", ClusterFitTransformer(extractor=rotnet)),
              ("clf", make_pipeline(StandardScaler(), LogisticRegression()))])

scored by accuracy on the held-out fold (the in-domain score a user would
select K with). Every fold's fitted ClusterFit is also probed, with the
package's probes, on Fashion classes 5-9 (held-out classes), MNIST and digits
28x28 (transfer), so the plot shows whether the K picked in-domain is the one
that transfers. RotNet's own features are scored the same way as a reference.

The search as first run (seed 0) clusters unwhitened, reads the pooled last
stage, trains in float32 and shows RotNet every rotation of every image
(``pca_components=None``, ``feature_stages=1``, ``precision="float32"``,
``rotations_per_image=4``, the defaults of the time). ``--package-defaults``
reruns it with the package's defaults (when first run: PCA-64 whitening,
three stages, for RotNet's reference row too) for K in {25, 100, 500, 1000}
and seeds 0, 1 and 2: a cell is the mean over seeds of the 3-fold mean, with
the range of the seeds' fold means (results ``n_clusters_options.*``;
``--todays-options``, the flag's former name in the recorded command, still
works).

Usage::

    python benchmarks/bench_n_clusters.py           # about 40 minutes
    python benchmarks/bench_n_clusters.py --package-defaults   # about 30 minutes
    python benchmarks/bench_n_clusters.py --quick   # 600 images, two values of K
"""

from __future__ import annotations

import time

import _common as common
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from skclusterfit import ClusterFitTransformer

N_CLUSTERS = [10, 25, 50, 100, 250, 500, 1000]
SEEN = "Fashion 0-4 (seen classes)"
IN_DOMAIN = f"{SEEN}: linear, cross-validated"
# The defaults when the search was first run, kept so that it repeats its record.
FIRST_RUN = dict(pca_components=None, feature_stages=1, precision="float32", rotations_per_image=4)


def scorer(targets, seed):
    """Score a fitted pipeline: its own accuracy on the fold, and probes of its features."""

    def score(pipeline, X_fold, y_fold):
        features = pipeline[:-1].transform
        found = {IN_DOMAIN: pipeline.score(X_fold, y_fold)}
        for target, (A_train, y_train, A_test, y_test) in targets.items():
            probes = common.probe_scores(features(A_train), y_train, features(A_test), y_test, seed)
            found.update({f"{target}: {probe}": value for probe, value in probes.items()})
        return found

    return score


def search(X, y, targets, seed, grid, epochs, rotnet_epochs, folds, **recipe):
    """One GridSearchCV over K and RotNet's reference row: metric -> column -> fold scores.

    Returns the scores, the K picked and the search's seconds. ``recipe``
    (parameters such as ``pca_components``) is set on every ClusterFit,
    the one that trains RotNet included.
    """
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    start = time.perf_counter()
    rotnet = (
        ClusterFitTransformer(
            extractor_epochs=rotnet_epochs,
            max_epochs=1,
            n_clusters=2,
            random_state=seed,
            **recipe,
        )
        .fit(X)
        .extractor_
    )
    cf = ClusterFitTransformer(extractor=rotnet, max_epochs=epochs, random_state=seed, **recipe)
    search = GridSearchCV(
        Pipeline([("cf", cf), ("clf", probe)]),
        {"cf__n_clusters": grid},
        cv=folds,
        scoring=scorer(targets, seed),
        refit=IN_DOMAIN,
    ).fit(X, y)
    seconds = time.perf_counter() - start

    reference = Pipeline(
        [
            (
                "rotnet",
                ClusterFitTransformer(extractor=rotnet, max_epochs=1, n_clusters=2, **recipe),
            ),
            ("clf", probe),
        ]
    ).set_params(rotnet__feature_layer="extractor")
    baseline = cross_validate(reference, X, y, cv=folds, scoring=scorer(targets, seed))

    metrics = [
        key[len("mean_test_") :] for key in search.cv_results_ if key.startswith("mean_test_")
    ]
    scores = {
        metric: {
            **{
                str(k): _plain(
                    search.cv_results_[f"split{f}_test_{metric}"][i] for f in range(folds)
                )
                for i, k in enumerate(grid)
            },
            "RotNet": _plain(baseline[f"test_{metric}"]),
        }
        for metric in metrics
    }
    return scores, search.best_params_["cf__n_clusters"], seconds


def main():
    parser = common.arguments(__doc__)
    parser.add_argument(
        "--package-defaults",
        "--todays-options",  # its former name, in the command of the committed results
        action="store_true",
        help="the package's defaults instead of the first run's options, K in {25, 100, "
        "500, 1000}, 3 seeds",
    )
    args = parser.parse_args()
    if args.quick:
        n, grid, epochs, rotnet_epochs, folds = 600, [5, 10], 1, 1, 2
    else:
        n, grid, epochs, rotnet_epochs, folds = 5_000, N_CLUSTERS, 20, 10, 3
    X, y, targets = common.held_out_protocol(n, args.quick)
    del targets[SEEN]  # the seen classes are scored on the search's own folds
    settings = (grid, epochs, rotnet_epochs, folds)
    fields = {"n_images": n, "folds": folds, "epochs": {"RotNet": rotnet_epochs, "N_cf": epochs}}
    if not args.package_defaults:
        scores, best, seconds = search(X, y, targets, 0, *settings, **FIRST_RUN)
        fields.update(seed=0, best_n_clusters=best, search_seconds=seconds, scores=scores)
        record = common.save("n_clusters", args.quick, fields, markdown)
        plot(record, args.quick)
        return
    seeds = [0] if args.quick else [0, 1, 2]
    grid = grid if args.quick else [25, 100, 500, 1000]
    settings = (grid, epochs, rotnet_epochs, folds)
    fields.update(seeds=[], best_n_clusters=[], search_seconds=[], scores={})
    for seed in seeds:
        scores, best, seconds = search(X, y, targets, seed, *settings)
        fields["seeds"].append(seed)
        fields["best_n_clusters"].append(best)
        fields["search_seconds"].append(seconds)
        for metric, columns in scores.items():
            for column, values in columns.items():
                cell = fields["scores"].setdefault(metric, {}).setdefault(column, [])
                cell.append(round(float(np.mean(values)), 4))
        common.save("n_clusters_options", args.quick, fields, markdown)


def _plain(values) -> list[float]:
    return [round(float(v), 4) for v in values]


def markdown(record):
    grid = _grid(record)
    if "seeds" in record:  # --package-defaults
        title = "Number of clusters with today's defaults (PCA-64 whitening, 3 stages)"
        about = (
            f"seeds {record['seeds']}; best K by the cross-validated in-domain score, per seed: "
            f"**{', '.join(map(str, record['best_n_clusters']))}**. The searches took "
            f"{np.mean(record['search_seconds']):.0f} s each. Mean over seeds of the "
            f"{record['folds']}-fold mean (min-max over the seeds' fold means)"
        )
    else:
        title = "Number of clusters: GridSearchCV over cf__n_clusters"
        about = (
            f"seed {record['seed']}, {_first_run()}. Best K by the "
            f"cross-validated in-domain score: **{record['best_n_clusters']}**. The search took "
            f"{record['search_seconds']:.0f} s. Mean accuracy over the folds (min-max)"
        )
    lines = common.markdown_header(title, record) + [
        f"D: {record['n_images']} Fashion-MNIST training images of classes 0-4; "
        f"{record['folds']}-fold GridSearchCV; RotNet "
        f"{record['epochs']['RotNet']} epochs, shared; N_cf {record['epochs']['N_cf']} epochs; "
        f"{about}; the RotNet column is N_pre's own features, probed the same way.",
        "",
    ]
    columns = ["score", *(f"K={k}" for k in grid), "RotNet"]
    rows = [
        [metric, *map(common.spread, cells.values())] for metric, cells in record["scores"].items()
    ]
    return "\n".join(lines + common.markdown_table(columns, rows) + [""])


def _first_run() -> str:
    return ", ".join(f"{name}={value!r}" for name, value in FIRST_RUN.items())


def _grid(record) -> list[int]:
    """The values of K searched, in the order of the record's columns."""
    return [int(k) for k in next(iter(record["scores"].values())) if k != "RotNet"]


def plot(record, quick):
    """Linear-probe accuracy against K, one line per target (PNG next to the JSON)."""
    grid = _grid(record)
    fig, ax = common.pyplot().subplots(figsize=(6.4, 4))
    for metric, cells in record["scores"].items():
        if not (metric.endswith("linear") or metric == IN_DOMAIN):
            continue
        values = [cells[str(k)] for k in grid]
        means = np.array([np.mean(v) for v in values])
        low = means - np.array([min(v) for v in values])
        high = np.array([max(v) for v in values]) - means
        line = ax.errorbar(grid, means, yerr=[low, high], marker="o", capsize=3, label=metric)
        ax.axhline(np.mean(cells["RotNet"]), color=line[0].get_color(), linestyle=":")
    ax.axvline(record["best_n_clusters"], color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("number of clusters K (grey: picked by GridSearchCV)")
    ax.set_ylabel("linear probe accuracy (dotted: RotNet)")
    ax.legend(fontsize=7)
    common.save_figure(fig, "n_clusters", quick)


if __name__ == "__main__":
    main()
