"""Stage 2: cluster the extractor's features into pseudo-labels.

Features are optionally PCA-whitened and L2-normalised (DeepCluster and VISSL do
both), then clustered. The pseudo-labels returned are contiguous ids
``0 .. n_clusters_ - 1``: clusters that end up empty are dropped, with a warning.

The features may be a memory-mapped array larger than memory: every step reads
them a chunk of rows at a time. PCA is fitted on a seeded sample; features the
caller gives up (``owned``, as ``fit`` does its embeddings) are normalised in
place and centred in place by k-means, so that no copy of them is made; other
prepared features are written to a memory-mapped file when a folder is given.
faiss is trained on a seeded sample and assigns in chunks, and scikit-learn's
k-means estimators read their batches straight from the mapped file.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.util
import json
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from . import _distributed as distributed
from ._checkpoints import decode, encode
from ._compat import warn
from ._extractors import embed

CLUSTERERS = ("auto", "kmeans", "minibatch", "faiss")
# faiss k-means is trained on at most this many points per cluster, drawn at
# random (seeded); every point is then assigned to its nearest centre. 256 is
# faiss's own default, kept by VISSL's ClusterFit pipeline.
FAISS_MAX_POINTS_PER_CENTROID = 256
# The rule of "auto", from benchmarks/results/perf_clustering.md (Fashion-MNIST,
# N 10k-60k, d 128-512, K 10-1000, 2 CPU cores), every pick the fastest method
# within 2% of the best inertia: below 20 points per cluster only k-means++ came
# that close; above 256 points per cluster faiss, trained on its sample, was the
# fastest in all 6 cases; in between k-means from random centres was the fastest
# but once (faiss, 0.13 s against 0.17 s).
AUTO_MIN_POINTS_PER_CLUSTER = 20
# PCA whitening is fitted on at most this many points, drawn at random (seeded).
PCA_MAX_SAMPLES = 50_000
# Rows transformed, assigned or summed at a time.
CHUNK_ROWS = 8192


@dataclass
class Clustering:
    """Result of the clustering stage."""

    labels: np.ndarray
    centers: np.ndarray
    method: object  # "faiss" or an unfitted scikit-learn estimator, see plan()
    seconds: float
    n_fitted: int | None = None  # points the clusterer was fitted on

    @property
    def n_clusters(self) -> int:
        """Number of non-empty clusters."""
        return int(self.labels.max()) + 1

    def summary(self) -> str:
        """What ran and what it found, in words."""
        fitted_on = ""
        if self.n_fitted is not None and self.n_fitted < len(self.labels):
            fitted_on = f", fitted on {self.n_fitted} of {len(self.labels)} images"
        return f"{self.method} found {self.n_clusters} clusters in {self.seconds:.1f}s{fitted_on}"


def cluster_each(
    features: np.ndarray,
    *,
    n_clusters,
    clusterer,
    seed: int,
    pca_components: int | None = None,
    l2_normalize: bool = True,
    folder=None,
    owned: bool = False,
) -> list[Clustering]:
    """Cluster ``features`` once per entry of ``n_clusters``, after one preparation.

    The features are whitened and normalised once (with ``seed``), then each
    entry is clustered by the method :func:`plan` gives for its number of
    clusters, seeded by :func:`entry_seed`: the first entry by ``seed`` itself,
    so that it is the clustering a list of that one number makes.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        In memory or memory-mapped; read a chunk of rows at a time.
    n_clusters : sequence of int
        Number of clusters of each clustering.
    clusterer : str or estimator
        One of ``CLUSTERERS`` or a scikit-learn clusterer (cloned; its
        ``n_clusters`` and ``random_state``, where it has them, are set).
    seed : int
        Random seed of the samples and of the clusterer.
    pca_components : int or None
        PCA-whiten to this many components first.
    l2_normalize : bool
        L2-normalise the features (after whitening, if any).
    folder : str, path or None
        Where prepared features that need an array of their own (whitened ones,
        or normalised ones not ``owned``) are written, memory-mapped; None
        keeps them in memory.
    owned : bool
        Whether ``features`` may be overwritten (the caller has no other use
        for them): they are then L2-normalised in place, unless whitened, and
        k-means centres them in place. Otherwise they are left as they are.

    Returns
    -------
    list of Clustering
        One per entry of ``n_clusters``, in order; each one's ``seconds``
        counts its own clustering (the first's, the preparation too).
    """
    start = time.perf_counter()
    _check_finite(features)
    prepared = _prepare(
        features,
        pca_components=pca_components,
        l2_normalize=l2_normalize,
        seed=seed,
        folder=folder,
        owned=owned,
    )
    # The features clustered are the package's own when prepared into a new array.
    owned = owned or prepared is not features
    results = []
    for position, count in enumerate(n_clusters):
        result = _cluster_prepared(
            prepared, count, clusterer, entry_seed(seed, position), owned=owned
        )
        result.seconds = time.perf_counter() - start
        results.append(result)
        start = time.perf_counter()
    return results


# Set only through _testing.observing_clustering: a function that each fit's
# clustering runs through, as observer(cluster_each, *args, **kwargs), for a
# benchmark that measures the clustering alone inside a fit.
OBSERVER: contextvars.ContextVar = contextvars.ContextVar("clustering_observer", default=None)


def embed_and_cluster(
    extractor, source, params: dict, *, device, seed: int, cache, reporter
) -> list[Clustering]:
    """Stage 2: N_pre's embeddings clustered once per entry of ``n_clusters``, or restored.

    ``params`` are the estimator's, with ``n_clusters`` as a list of ints; this
    stage reads ``n_clusters``, ``clusterer``, ``pca_components``,
    ``l2_normalize``, ``batch_size`` and ``features_dir``. Clusterings restored
    from ``cache`` skip the embedding too. Under ``torch.distributed`` every
    rank embeds its block, rank 0 gathers the blocks and clusters, and every
    rank gets every clustering.
    """
    counts, clusterer = params["n_clusters"], params["clusterer"]
    saved = distributed.run_on_main(lambda: cache and cache.load("clustering"))
    if saved is not None:
        options = dict(clusterer=clusterer, n_samples=len(source), counts=counts, seed=seed)
        clusterings = from_record(saved, **options)
        found = ", ".join(str(clustering.n_clusters) for clustering in clusterings)
        reporter.say(f"clustering: {found} clusters restored from checkpoint")
        return clusterings
    with scratch_folder(params["features_dir"]) as scratch:
        embeddings = embed(
            extractor,
            source,
            batch_size=params["batch_size"],
            device=device,
            folder=scratch,
            cache=cache,
            reporter=reporter,
        )
        observer = OBSERVER.get()
        cluster = cluster_each if observer is None else functools.partial(observer, cluster_each)
        # Rank 0 clusters and hands every clustering (labels, centres, method) to every rank.
        clusterings = distributed.run_on_main(
            functools.partial(
                cluster,
                embeddings,
                n_clusters=counts,
                clusterer=clusterer,
                pca_components=params["pca_components"],
                l2_normalize=params["l2_normalize"],
                seed=seed,
                folder=scratch,
                owned=True,
            )
        )
        del embeddings  # the clusters are all that later stages need
    if cache is not None:
        cache.save("clustering", to_record(clusterings))
    for clustering in clusterings:
        reporter.say(f"clustering: {clustering.summary()}")
    return clusterings


def to_record(clusterings: list[Clustering]) -> dict:
    """The clusterings as a checkpoint record: tensors and strings only.

    The first clustering is where a fit with an int ``n_clusters`` keeps its
    only one, the others under ``"more"``. The method that ran is kept as JSON,
    so a restored fit reports it whatever is installed then; a clusterer that
    is not scikit-learn's is planned again instead.
    """
    records = []
    for clustering in clusterings:
        try:
            method = json.dumps(encode("clusterer_", clustering.method))
        except TypeError:
            method = ""
        labels, centers = torch.from_numpy(clustering.labels), torch.from_numpy(clustering.centers)
        records.append({"labels": labels, "centers": centers, "method": method})
    return {**records[0], "more": records[1:]}


def from_record(record: dict, *, clusterer, n_samples: int, counts, seed: int) -> list[Clustering]:
    """The clusterings :func:`to_record` stored, for the same ``counts`` and ``seed``."""
    clusterings = []
    entries = [record, *record["more"]]
    for position, (count, entry) in enumerate(zip(counts, entries, strict=True)):
        if entry["method"]:
            method = decode("clusterer_", json.loads(entry["method"]))
        else:
            method = plan(clusterer, n_samples, count, entry_seed(seed, position))
        labels, centers = entry["labels"].numpy(), entry["centers"].numpy()
        clusterings.append(Clustering(labels, centers, method, 0.0))
    return clusterings


@contextlib.contextmanager
def scratch_folder(features_dir):
    """A temporary subfolder of ``features_dir`` (None without one), removed after.

    A subfolder of its own keeps fits that share ``features_dir`` (in a
    parallel grid search, say) from writing over each other's files.
    """
    if features_dir is None:
        yield None
        return
    Path(features_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=features_dir, prefix="skclusterfit-") as path:
        yield Path(path)


def entry_seed(seed: int, position: int) -> int:
    """The seed of the clustering at ``position`` of a list of them: ``seed`` for the first.

    The others come from ``seed`` and their position through numpy's
    ``SeedSequence``, so that no two entries share a seed.
    """
    if position == 0:
        return seed
    state = np.random.SeedSequence([seed, position]).generate_state(1, np.uint32)[0]
    return int(state >> 1)  # below 2**31, a seed every clusterer takes


def _cluster_prepared(features, n_clusters: int, clusterer, seed: int, *, owned: bool):
    """Cluster prepared features into at most ``n_clusters`` groups (see :func:`cluster_each`)."""
    method = plan(clusterer, len(features), n_clusters, seed)
    expected = n_clusters
    n_fitted = len(features)
    if method == "faiss":
        labels, n_fitted = _faiss_kmeans(features, n_clusters, seed)
    else:
        model = clone(method)
        params = model.get_params()
        if "n_clusters" not in params:
            expected = None  # the clusterer decides how many clusters there are
        if owned and "copy_x" in params:
            # KMeans would copy the features (into memory, if mapped); it
            # centres them in place instead and adds the mean back after.
            model.set_params(copy_x=False)
        with warnings.catch_warnings():
            if isinstance(clusterer, str):
                # The package's own k-means warns only of too few distinct points,
                # which _contiguous reports in the package's words; a user's
                # clusterer keeps its warnings.
                warnings.simplefilter("ignore", ConvergenceWarning)
            labels = np.asarray(model.fit_predict(features))
        if labels.shape != (len(features),) or labels.dtype.kind not in "iu":
            raise ValueError(
                f"The clusterer {type(model).__name__} gave labels of shape {labels.shape} "
                f"and dtype {labels.dtype} for {len(features)} images; expected one "
                f"integer label per image."
            )

    labels = _contiguous(labels, expected)
    centers = _cluster_means(features, labels)
    return Clustering(labels, centers, method, 0.0, n_fitted)


def plan(clusterer, n_samples: int, n_clusters: int, seed: int):
    """The clustering :func:`cluster_each` runs: ``"faiss"`` or an unfitted scikit-learn estimator.

    The estimator carries every setting it runs with (``n_clusters``,
    initialisation, ``random_state``), so it is a value the ``clusterer``
    parameter accepts that repeats the clustering.
    """
    method = _choose(clusterer, n_samples, n_clusters)
    return method if method == "faiss" else _sklearn_model(method, clusterer, n_clusters, seed)


def _prepare(
    features, *, pca_components, l2_normalize: bool, seed: int, folder, owned: bool
) -> np.ndarray:
    """Whitened and/or L2-normalised float32 features, computed a chunk at a time.

    Features the caller owns are normalised in place, so that no second copy
    of them is made; whitened ones go to a new array, in ``folder`` if given.
    """
    if pca_components is None and not l2_normalize:
        return features if folder is not None else np.asarray(features, dtype=np.float32)
    n_samples, width = features.shape
    pca = None
    sample = None if pca_components is None else _sample(features, PCA_MAX_SAMPLES, seed)
    # Features of no variance (identical images) have no directions to whiten.
    if sample is not None and np.ptp(sample, axis=0).any():
        # Whitening divides by each direction's spread: directions of (almost)
        # none, as n images have beyond n - 1, would blow noise up.
        components = max(min(pca_components, sample.shape[1], sample.shape[0] - 1), 1)
        pca = PCA(components, whiten=True, random_state=seed).fit(sample)
        spread = pca.explained_variance_
        kept = max(int(np.sum(spread > spread[0] * 1e-6)), 1)
        if kept < components:
            pca = PCA(kept, whiten=True, random_state=seed).fit(sample)
        width = pca.n_components_
    if pca is None and owned and features.dtype == np.float32:
        out = features
    elif folder is None:
        out = np.empty((n_samples, width), dtype=np.float32)
    else:
        out = np.lib.format.open_memmap(
            Path(folder) / "clustered.npy", "w+", np.float32, (n_samples, width)
        )
    for start in range(0, n_samples, CHUNK_ROWS):
        chunk = np.asarray(features[start : start + CHUNK_ROWS], dtype=np.float32)
        if pca is not None:
            chunk = pca.transform(chunk).astype(np.float32, copy=False)
        if l2_normalize:
            norms = np.linalg.norm(chunk, axis=1, keepdims=True)
            chunk = chunk / np.maximum(norms, 1e-12)
        out[start : start + CHUNK_ROWS] = chunk
    return out


def _check_finite(features) -> None:
    """Raise if the features hold NaN or infinity, naming the first image that does."""
    for start in range(0, len(features), CHUNK_ROWS):
        bad = ~np.isfinite(features[start : start + CHUNK_ROWS]).all(axis=1)
        if bad.any():
            raise ValueError(
                f"The extractor's features hold NaN or infinity (first for image "
                f"{start + int(bad.argmax())}); it must give finite features."
            )


def _sample(features, max_rows: int, seed: int) -> np.ndarray:
    """At most ``max_rows`` rows drawn at random (seeded), as contiguous float32."""
    if len(features) <= max_rows:
        return np.ascontiguousarray(features, dtype=np.float32)
    rows = np.sort(np.random.RandomState(seed).choice(len(features), max_rows, replace=False))
    return np.ascontiguousarray(features[rows], dtype=np.float32)


def _cluster_means(features, labels: np.ndarray) -> np.ndarray:
    """Mean of each cluster's features, summed a chunk at a time."""
    n_found = int(labels.max()) + 1
    sums = np.zeros((n_found, features.shape[1]))
    for start in range(0, len(features), CHUNK_ROWS):
        chunk_labels = labels[start : start + CHUNK_ROWS]
        kept = chunk_labels >= 0
        np.add.at(sums, chunk_labels[kept], features[start : start + CHUNK_ROWS][kept])
    counts = np.bincount(labels[labels >= 0], minlength=n_found)
    return (sums / counts[:, None]).astype(np.float32)


def _choose(clusterer, n_samples: int, n_clusters: int, faiss_installed: bool | None = None):
    """The method to run: the named one, the given estimator, or the rule for "auto".

    ``faiss_installed=None`` looks whether faiss can be imported.
    """
    if not isinstance(clusterer, str) or clusterer != "auto":
        return clusterer
    if n_samples < AUTO_MIN_POINTS_PER_CLUSTER * n_clusters:
        return "kmeans"
    if faiss_installed is None:
        faiss_installed = importlib.util.find_spec("faiss") is not None
    if faiss_installed and n_samples > FAISS_MAX_POINTS_PER_CENTROID * n_clusters:
        return "faiss"
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


def _faiss_kmeans(features, n_clusters: int, seed: int) -> tuple[np.ndarray, int]:
    """Labels from faiss k-means trained on a sample, and the sample's size."""
    try:
        import faiss
    except ImportError:
        raise ImportError(
            "clusterer='faiss' needs the faiss package: pip install 'skclusterfit[faiss]'."
        ) from None
    train = _sample(features, FAISS_MAX_POINTS_PER_CENTROID * n_clusters, seed)
    kmeans = faiss.Kmeans(
        features.shape[1],
        n_clusters,
        niter=20,
        seed=seed,
        verbose=False,
        min_points_per_centroid=1,  # no warning printed for few points per centre
        # The sample is drawn above, so faiss has nothing left to subsample.
        max_points_per_centroid=FAISS_MAX_POINTS_PER_CENTROID,
    )
    kmeans.train(train)
    labels = np.empty(len(features), dtype=np.int64)
    for start in range(0, len(features), CHUNK_ROWS):
        chunk = np.ascontiguousarray(features[start : start + CHUNK_ROWS], dtype=np.float32)
        labels[start : start + CHUNK_ROWS] = kmeans.index.search(chunk, 1)[1].ravel()
    return labels, len(train)


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
        warn(
            f"Clustering found {len(found)} non-empty clusters of the {n_clusters} "
            f"asked for; N_cf is trained on {len(found)} classes.",
        )
    if not assigned.all():
        warn(
            f"The clusterer left {np.sum(~assigned)} samples unassigned; they are "
            f"not used to train N_cf.",
        )
    return out
