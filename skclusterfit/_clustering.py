"""Stage 2: cluster the extractor's features into pseudo-labels.

Features are optionally PCA-whitened and L2-normalised (DeepCluster and VISSL do
both), then clustered. The pseudo-labels returned are contiguous ids
``0 .. n_clusters_ - 1``: clusters that end up empty are dropped, with a warning.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

CLUSTERERS = ("auto", "kmeans", "minibatch", "faiss")
# The rule of "auto", from benchmarks/results/perf_clustering.md (Fashion-MNIST,
# N 10k-60k, d 128-512, K 10-1000, 2 CPU cores): with fewer than 20 points per
# cluster only k-means++ came within 2% of the best inertia; otherwise k-means
# from random centres did, and was the fastest in 7 of those 8 cases (faiss was
# faster once, at N=60k, d=128, K=100).
AUTO_MIN_POINTS_PER_CLUSTER = 20


@dataclass
class Clustering:
    """Result of the clustering stage."""

    labels: np.ndarray
    centers: np.ndarray
    method: str
    seconds: float


def cluster(
    features: np.ndarray,
    n_clusters: int,
    clusterer,
    pca_components: int | None,
    l2_normalize: bool,
    seed: int,
) -> Clustering:
    """Cluster ``features`` (n, d) into at most ``n_clusters`` groups.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
    n_clusters : int
    clusterer : str or estimator
        One of ``CLUSTERERS`` or a scikit-learn clusterer (cloned; its
        ``n_clusters`` and ``random_state``, where it has them, are set).
    pca_components : int or None
        PCA-whiten to this many components first.
    l2_normalize : bool
        L2-normalise the features (after whitening, if any).
    seed : int
        Random seed of the clusterer.

    Returns
    -------
    Clustering
        Labels (-1 for samples the clusterer left unassigned), centres in the
        space that was clustered, the method used and its time.
    """
    start = time.perf_counter()
    features = np.asarray(features, dtype=np.float32)
    if pca_components is not None:
        n_components = min(pca_components, *features.shape)
        features = PCA(n_components, whiten=True, random_state=seed).fit_transform(features)
        features = features.astype(np.float32, copy=False)
    if l2_normalize:
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        features = features / np.maximum(norms, 1e-12)

    method = _choose(clusterer, len(features), n_clusters)
    expected = n_clusters
    if method == "faiss":
        labels = _faiss_kmeans(features, n_clusters, seed)
    else:
        model = _sklearn_model(method, clusterer, n_clusters, seed)
        if "n_clusters" not in model.get_params():
            expected = None  # the clusterer decides how many clusters there are
        with warnings.catch_warnings():
            # Too few distinct points is reported below, in the package's own words.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(features)
        labels = np.asarray(model.labels_)

    labels = _contiguous(labels, expected)
    centers = np.stack([features[labels == k].mean(0) for k in range(labels.max() + 1)])
    name = method if isinstance(method, str) else type(method).__name__
    return Clustering(labels, centers, name, time.perf_counter() - start)


def _choose(clusterer, n_samples: int, n_clusters: int):
    """The method to run: the named one, the given estimator, or the rule for "auto"."""
    if not isinstance(clusterer, str) or clusterer != "auto":
        return clusterer
    if n_samples < AUTO_MIN_POINTS_PER_CLUSTER * n_clusters:
        return "kmeans"
    return "kmeans-random"


def _sklearn_model(method, clusterer, n_clusters: int, seed: int):
    if method == "kmeans":
        return KMeans(n_clusters, n_init=1, random_state=seed)
    if method == "kmeans-random":
        return KMeans(n_clusters, init="random", n_init=1, random_state=seed)
    if method == "minibatch":
        return MiniBatchKMeans(n_clusters, n_init=3, batch_size=4096, random_state=seed)
    model = clone(clusterer)
    params = model.get_params()
    model.set_params(
        **{
            key: value
            for key, value in (("n_clusters", n_clusters), ("random_state", seed))
            if key in params
        }
    )
    return model


def _faiss_kmeans(features: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    try:
        import faiss
    except ImportError:
        raise ImportError(
            "clusterer='faiss' needs the faiss package: pip install 'skclusterfit[faiss]'."
        ) from None
    kmeans = faiss.Kmeans(
        features.shape[1],
        n_clusters,
        niter=20,
        seed=seed,
        verbose=False,
        min_points_per_centroid=1,  # no warning printed for few points per centre
        # Use every point: faiss would otherwise subsample to 256 per centre.
        max_points_per_centroid=max(len(features), 1),
    )
    kmeans.train(np.ascontiguousarray(features))
    _, labels = kmeans.index.search(np.ascontiguousarray(features), 1)
    return labels.ravel().astype(np.int64)


def _contiguous(labels: np.ndarray, n_clusters: int | None) -> np.ndarray:
    """Renumber the clusters that have members as 0, 1, ...; keep -1 (unassigned)."""
    labels = np.asarray(labels, dtype=np.int64)
    assigned = labels >= 0
    if not assigned.any():
        raise ValueError("The clusterer assigned no sample to any cluster.")
    found, remapped = np.unique(labels[assigned], return_inverse=True)
    out = np.full_like(labels, -1)
    out[assigned] = remapped
    if n_clusters is not None and len(found) < n_clusters:
        warnings.warn(
            f"Clustering found {len(found)} non-empty clusters of the {n_clusters} "
            f"asked for; N_cf is trained on {len(found)} classes.",
            UserWarning,
            stacklevel=3,
        )
    if not assigned.all():
        warnings.warn(
            f"The clusterer left {np.sum(~assigned)} samples unassigned; they are "
            f"not used to train N_cf.",
            UserWarning,
            stacklevel=3,
        )
    return out
