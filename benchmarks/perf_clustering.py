"""Time and inertia of the clustering methods, to set what ``clusterer="auto"`` picks.

Features: Fashion-MNIST training images (Debian package ``dataset-fashion-mnist``),
reduced by PCA to d dimensions and L2-normalised, as the clustering stage sees
its input. Methods: scikit-learn KMeans with k-means++ and with random
initialisation (one init each, as the package runs it), MiniBatchKMeans (the
package's settings), and faiss k-means as the package runs it (20 iterations,
trained on a seeded sample of at most 256 x K points, then every point assigned
to its nearest centre).
Inertia is the sum of squared distances to the nearest centre, computed the
same way for every method.

Usage::

    python benchmarks/perf_clustering.py          # N 10k, 60k; d 128, 512; K 10, 100, 1000
    python benchmarks/perf_clustering.py --quick  # N 2k; d 32; K 10, 50

Results go to ``benchmarks/results/perf_clustering.{json,md}``.
"""

from __future__ import annotations

import _common as common
import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import pairwise_distances_argmin_min

from skclusterfit._testing import _choose, _faiss_kmeans, _sklearn_model
from skclusterfit.datasets import load_fashion_mnist


def methods(seed):
    """Name -> function(features, k) returning labels."""

    def sklearn_run(kind, init=None):
        def run(features, k):
            model = (
                KMeans(k, init=init, n_init=1, random_state=seed)
                if init
                else _sklearn_model(kind, None, k, seed)
            )
            return model.fit(features).labels_

        return run

    found = {
        "kmeans (k-means++)": sklearn_run("kmeans"),
        "kmeans (random init)": sklearn_run("kmeans", init="random"),
        "minibatch": sklearn_run("minibatch"),
    }
    try:
        import faiss  # noqa: F401

        found["faiss"] = lambda features, k: _faiss_kmeans(features, k, seed)[0]
    except ImportError:
        pass
    return found


def inertia(features, labels):
    centres = np.stack([features[labels == c].mean(0) for c in np.unique(labels)])
    _, distances = pairwise_distances_argmin_min(features, centres)
    return float(np.sum(distances**2))


def main():
    quick = common.arguments(__doc__).parse_args().quick
    sizes, dims, ks = (
        ([2000], [32], [10, 50]) if quick else ([10_000, 60_000], [128, 512], [10, 100, 1000])
    )
    images = load_fashion_mnist("train").data
    rows = []
    for d in dims:
        reduced = PCA(d, random_state=0).fit_transform(images[: max(sizes)].astype(np.float32))
        reduced /= np.linalg.norm(reduced, axis=1, keepdims=True)
        for n in sizes:
            features = np.ascontiguousarray(reduced[:n], dtype=np.float32)
            for k in ks:
                for name, run in methods(seed=0).items():
                    labels, seconds = common.timed(run, features, k)
                    rows.append(
                        dict(
                            n=n,
                            d=d,
                            k=k,
                            method=name,
                            seconds=seconds,
                            inertia=inertia(features, labels),
                        )
                    )
                    print(rows[-1], flush=True)
    common.save("perf_clustering", quick, {"rows": rows}, markdown)


def markdown(record):
    lines = common.markdown_header("Clustering methods: time and inertia", record) + [
        "Inertia relative to the best method of the same (N, d, K); time in seconds.",
        '"auto" marks the method that `clusterer="auto"` runs for that (N, K) with faiss '
        "installed.",
        "",
    ]
    names = {"kmeans": "kmeans (k-means++)", "kmeans-random": "kmeans (random init)"}
    cells = []
    for row in record["rows"]:
        best = min(
            r["inertia"]
            for r in record["rows"]
            if (r["n"], r["d"], r["k"]) == (row["n"], row["d"], row["k"])
        )
        picked = _choose("auto", row["n"], row["k"], faiss_installed=True)
        auto = "auto" if names.get(picked, picked) == row["method"] else ""
        cells.append(
            [row["n"], row["d"], row["k"], row["method"], f"{row['seconds']:.2f}"]
            + [f"{row['inertia'] / best:.4f}", auto]
        )
    columns = ["N", "d", "K", "method", "seconds", "inertia / best", "auto"]
    return "\n".join(lines + common.markdown_table(columns, cells)) + "\n"


if __name__ == "__main__":
    main()
