"""A grid search over k with and without the stage cache (``checkpoint_dir``).

The design card's search: ``GridSearchCV`` of ``Pipeline([("cf",
ClusterFitTransformer()), ("clf", LogisticRegression())])`` over
``cf__n_clusters`` in {10, 50, 100}, 3-fold cross-validation, on the first
2,000 Fashion-MNIST training images, package defaults otherwise
(``random_state=0``, on the CPU). Without a cache every candidate trains its
own RotNet N_pre; with one ``checkpoint_dir`` shared by the search, the three
values of k of a fold share one N_pre (and its embeddings), stored under a key
of what it depends on. Both arms must give the same ``cv_results_`` scores, bit
for bit.

The two arms are run fold by fold, interleaved (fold 1 without, fold 1 with,
fold 2 without, ...), each as a ``GridSearchCV`` over that fold's split
(``refit=False``: the search alone is timed), so that load from other programs
on the machine falls on both alike.

Usage::

    python benchmarks/bench_grid_cache.py           # the design card's search
    python benchmarks/bench_grid_cache.py --quick   # 300 images, 1 epoch, k in {5, 10}
    python benchmarks/bench_grid_cache.py --n-images 1000 --extractor-epochs 2 --max-epochs 4
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import _common as common
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_fashion_mnist


def search(X, y, split, grid: dict, checkpoint_dir, **params) -> tuple[list, float, float]:
    """The test scores of each candidate on one split, the search's wall and CPU time.

    The CPU time (of this process, all its threads) counts the work done,
    which other programs on the same cores change less than the wall time.
    """
    pipe = Pipeline(
        [
            ("cf", ClusterFitTransformer(**params, checkpoint_dir=checkpoint_dir)),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )
    grid_search = GridSearchCV(pipe, grid, cv=[split], refit=False)
    cpu = time.process_time()
    grid_search, seconds = common.timed(grid_search.fit, X, y)
    cpu = time.process_time() - cpu
    return grid_search.cv_results_["split0_test_score"].tolist(), seconds, cpu


def main():
    parser = common.arguments(__doc__)
    parser.add_argument("--n-images", type=int, help="training images (default 2,000)")
    parser.add_argument("--extractor-epochs", type=int, help="extractor_epochs of every fit")
    parser.add_argument("--max-epochs", type=int, help="max_epochs of every fit")
    args = parser.parse_args()
    quick = args.quick
    n, ks = (300, [5, 10]) if quick else (args.n_images or 2_000, [10, 50, 100])
    params = {"random_state": 0, "device": "cpu"}
    if quick:
        params.update(extractor_epochs=1, max_epochs=1)
    for name in ("extractor_epochs", "max_epochs"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    X, y = load_fashion_mnist("train", return_X_y=True)
    X, y = X[:n], y[:n]
    splits = list(StratifiedKFold(3).split(X, y))  # what cv=3 gives a classifier
    grid = {"cf__n_clusters": ks}
    # Without a cache each candidate trains its own N_pre.
    runs: dict = {
        "without cache": {
            "scores": [],
            "seconds": [],
            "cpu_seconds": [],
            "N_pre trained": [len(ks)] * 3,
        },
        "with cache": {"scores": [], "seconds": [], "cpu_seconds": [], "N_pre trained": []},
    }
    load_before = os.getloadavg()[1]
    with tempfile.TemporaryDirectory() as folder:
        for fold, split in enumerate(splits):
            scores, seconds, cpu = search(X, y, split, grid, None, **params)
            runs["without cache"]["scores"].append(scores)
            runs["without cache"]["seconds"].append(round(seconds, 1))
            runs["without cache"]["cpu_seconds"].append(round(cpu, 1))
            print(f"fold {fold} without cache: {seconds:.1f}s {scores}", flush=True)
            before = len(list(Path(folder).glob("rotnet-*.pt")))
            scores, seconds, cpu = search(X, y, split, grid, folder, **params)
            runs["with cache"]["scores"].append(scores)
            runs["with cache"]["seconds"].append(round(seconds, 1))
            runs["with cache"]["cpu_seconds"].append(round(cpu, 1))
            trained = len(list(Path(folder).glob("rotnet-*.pt"))) - before
            runs["with cache"]["N_pre trained"].append(trained)
            print(f"fold {fold} with cache: {seconds:.1f}s {scores}, {trained} N_pre", flush=True)
    identical = runs["with cache"]["scores"] == runs["without cache"]["scores"]
    total = {arm: sum(run["seconds"]) for arm, run in runs.items()}
    cpu = {arm: sum(run["cpu_seconds"]) for arm, run in runs.items()}
    fields = {
        "n_images": n,
        "n_clusters": ks,
        "params": params,
        # The 5-minute load average before and after: near 0 before and near the
        # thread count after means the search had the cores to itself.
        "load_average": [round(load_before, 2), round(os.getloadavg()[1], 2)],
        "runs": runs,
        "mean_test_score": {
            arm: np.mean(run["scores"], axis=0).round(4).tolist() for arm, run in runs.items()
        },
        "identical_scores": identical,
        "seconds": {arm: round(value, 1) for arm, value in total.items()},
        "cpu_seconds": {arm: round(value, 1) for arm, value in cpu.items()},
        "speedup": round(total["without cache"] / total["with cache"], 2),
        "cpu_speedup": round(cpu["without cache"] / cpu["with cache"], 2),
    }
    common.save("grid_cache", quick, fields, markdown)
    assert identical, "the cache changed the scores"
    assert runs["with cache"]["N_pre trained"] == [1] * len(splits)


def markdown(record):
    lines = common.markdown_header("Grid search over k with the stage cache", record)
    lines += [
        f"GridSearchCV over cf__n_clusters in {record['n_clusters']}, 3 folds, on the "
        f"first {record['n_images']} Fashion-MNIST training images; Pipeline of "
        f"ClusterFitTransformer({record['params']}) and LogisticRegression. "
        f"The arms ran interleaved, fold by fold. {load_words(record)}",
        "",
    ]
    rows = []
    for arm, run in record["runs"].items():
        trained = sum(run["N_pre trained"])
        rows.append(
            [
                arm,
                " / ".join(f"{s:.0f}" for s in run["seconds"]),
                f"{record['seconds'][arm]:.0f}",
                f"{record['cpu_seconds'][arm]:.0f}",
                trained,
                " / ".join(f"{s:.4f}" for s in record["mean_test_score"][arm]),
            ]
        )
    columns = ["arm", "seconds per fold", "seconds", "CPU seconds", "N_pre trained"]
    columns.append("mean test score per k")
    lines += common.markdown_table(columns, rows)
    same = "identical" if record["identical_scores"] else "NOT identical"
    lines += [
        "",
        f"Speed-up with the cache: {record['speedup']}x in wall time, "
        f"{record['cpu_speedup']}x in CPU time; the scores of every fold and k are {same} "
        f"in both arms.",
    ]
    return "\n".join(lines) + "\n"


def load_words(record) -> str:
    """How busy the machine was, as the record says."""
    before, after = record["load_average"]
    return f"5-minute load average {before} before the run, {after} at its end."


if __name__ == "__main__":
    main()
