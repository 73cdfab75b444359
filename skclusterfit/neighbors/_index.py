"""ImageIndex: nearest fitted images, near-duplicate groups and outlier scores."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.base import BaseEstimator, _fit_context
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted

from .._inputs import _streamed_kind
from ..metrics._layers import check_clusterfit

# Cosine distance under which two images count as near-duplicates by default:
# see the Notes of ImageIndex for what it means and how to choose another.
DUPLICATE_THRESHOLD = 0.02
BACKENDS = ("auto", "faiss", "sklearn")
# Queries are searched this many at a time, so that the (queries x fitted)
# similarities of the exact search stay small whatever the number of queries.
QUERY_CHUNK = 2048


class ImageIndex(BaseEstimator):
    """Search the images a fitted ClusterFit has seen, by their features.

    :meth:`fit` reads the features of a set of images with
    ``transformer.transform`` (the transformer is used as it is, never
    refitted). Then :meth:`kneighbors` finds the fitted images nearest to any
    query images, :meth:`duplicates` groups the fitted images that are
    near-duplicates of one another, and :meth:`outlier_scores` says how far
    each image lies from its neighbours. Distances are cosine distances,
    ``1 - cos``, in [0, 2]: those of the package's k-NN probe.

    Parameters
    ----------
    transformer : ClusterFitTransformer
        A fitted transformer; its ``transform`` (with its ``feature_layer``)
        gives the features searched.
    n_neighbors : int, default=10
        Neighbours returned by :meth:`kneighbors`, and the neighbour whose
        distance is the outlier score, unless a call says otherwise.
    backend : {"auto", "faiss", "sklearn"}, default="auto"
        ``"faiss"`` searches with faiss's exact inner-product index (the
        ``faiss`` extra); ``"sklearn"`` with scikit-learn's brute-force
        :class:`~sklearn.neighbors.NearestNeighbors`; ``"auto"`` takes faiss
        when it is installed. Both are exact: they return the same neighbours,
        up to the order of equally distant ones.

    Attributes
    ----------
    features_ : ndarray of shape (n_fitted, n_features)
        The fitted images' features scaled to unit length (float32); an
        all-zero feature row stays zero, at distance 1 from every image.
    names_ : ndarray of str of shape (n_fitted,) or None
        The file path of each fitted image, as given to :meth:`fit`; None
        when the images were an array or a Dataset.
    n_samples_fit_ : int
        Number of fitted images (``n_fitted`` above).
    backend_ : str
        The backend searching: ``"faiss"`` or ``"sklearn"``.

    See Also
    --------
    NeighborsDisplay : Query images beside their nearest fitted images.
    DuplicatesDisplay : The near-duplicate groups, one row each.
    OutliersDisplay : The images with the highest outlier scores.

    Notes
    -----
    **Near-duplicates.** Two fitted images are linked when their cosine
    distance is at most ``threshold``; a group is a connected component of
    these links with at least two images, so an image can join a group
    through a chain of close images. The default, ``DUPLICATE_THRESHOLD``
    (0.02, a cosine similarity of at least 0.98), is the threshold of best F1
    for default ClusterFit features on edited copies of Fashion-MNIST
    training images (brightened, JPEG re-encoded, flipped, cropped), the
    median over three seeds of ``benchmarks/bench_neighbors.py``. Distances
    depend on the data and the model: to choose a threshold, make edited
    copies of some of your images, query them with :meth:`kneighbors`
    (each finds its original first) and take a distance that covers most of
    them; :class:`DuplicatesDisplay` shows what a threshold groups.

    **Outliers.** The score of an image is its distance to its
    ``n_neighbors``-th nearest fitted image: large where few fitted images
    are near it. Scoring new images against an index of images you trust,
    ``outlier_scores(X)``, keeps outliers from vouching for one another;
    ``outlier_scores()`` scores the fitted images among themselves, where a
    group of outliers of one kind are each other's neighbours and score low.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit import ClusterFitTransformer
    >>> from skclusterfit.neighbors import ImageIndex
    >>> X = load_digits().data
    >>> cf = ClusterFitTransformer(n_clusters=5, max_epochs=1, extractor_epochs=1,
    ...                            random_state=0).fit(X[:300])
    >>> index = ImageIndex(cf, n_neighbors=5).fit(X[:300])
    >>> distances, indices = index.kneighbors(X[300:302])
    >>> indices.shape
    (2, 5)
    >>> bool((distances[:, :-1] <= distances[:, 1:]).all())
    True
    """

    _parameter_constraints: dict = {
        "transformer": "no_validation",  # checked in fit, with a hint for a pipeline
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "backend": [StrOptions(set(BACKENDS))],
    }

    def __init__(self, transformer, *, n_neighbors=10, backend="auto"):
        self.transformer = transformer
        self.n_neighbors = n_neighbors
        self.backend = backend

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, features=None):
        """Read the features of the images ``X`` and index them.

        Parameters
        ----------
        X : array-like, sequence of paths or torch Dataset
            Images, as ``transformer.transform`` takes them.
        y : None
            Ignored.
        features : array-like of shape (n_samples, n_features), default=None
            The features of ``X`` by ``transformer``, where they were computed
            already (such as :func:`~skclusterfit.datasets.load_features`'
            ``features``); ``None`` computes them.

        Returns
        -------
        self : ImageIndex
            The fitted index.
        """
        check_clusterfit(self.transformer, "ImageIndex")
        if features is None:
            features = self.transformer.transform(X)
        elif len(features) != len(X) or np.ndim(features) != 2:
            raise ValueError(
                f"features must have one row per image of X ({len(X)}); got shape "
                f"{np.shape(features)}."
            )
        features = unit_rows(features)
        if len(features) < 2:
            raise ValueError(f"ImageIndex needs at least 2 images; got {len(features)}.")
        self.backend_ = resolve_backend(self.backend)
        self.features_ = features
        self.n_samples_fit_ = len(features)
        paths = _streamed_kind(X) == "paths"
        self.names_ = np.array([os.fspath(p) for p in X]) if paths else None
        # What the displays and exports read the fitted images from: a
        # reference, as NearestNeighbors keeps its data.
        self._fit_X = X
        self._search = searcher(self.backend_, features)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "features_")

    def __getstate__(self):
        # A faiss index does not pickle; it is rebuilt from features_.
        state = dict(super().__getstate__())  # a copy: it can be self.__dict__
        state.pop("_search", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "features_" in state:
            self._search = searcher(self.backend_, self.features_)

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The fitted images nearest to each query image, nearest first.

        Parameters
        ----------
        X : array-like, sequence of paths or torch Dataset, default=None
            Query images, as ``transformer.transform`` takes them. ``None``
            queries the fitted images themselves, each leaving itself out.
        n_neighbors : int, default=None
            Neighbours per query; ``None`` takes ``self.n_neighbors``. At most
            the number of fitted images (one fewer with ``X=None``).
        return_distance : bool, default=True
            Return the distances as well as the indices.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            Cosine distances (float32), ascending along each row; only with
            ``return_distance=True``.
        indices : ndarray of shape (n_queries, n_neighbors)
            Positions of the neighbours among the fitted images (int64);
            ``names_[indices]`` gives their file names.
        """
        check_is_fitted(self)
        k = self._check_k(n_neighbors, X is None)
        distances, indices = self._neighbours(X, k)
        return (distances, indices) if return_distance else indices

    @validate_params(
        {"threshold": [Interval(Real, 0, 2, closed="both")]},
        prefer_skip_nested_validation=True,
    )
    def duplicates(self, threshold=DUPLICATE_THRESHOLD) -> list[np.ndarray]:
        """Groups of fitted images within ``threshold`` of one another.

        Parameters
        ----------
        threshold : float, default=0.02
            Largest cosine distance at which two images are linked (see Notes
            of :class:`ImageIndex` for the groups it makes and how to choose it).

        Returns
        -------
        groups : list of ndarray of int64
            Each group's positions among the fitted images, ascending; groups
            of at least two images, the largest first (ties by first image).
            ``names_[group]`` gives a group's file names.
        """
        check_is_fitted(self)
        return duplicate_groups(self._search, self.features_, threshold)

    def outlier_scores(self, X=None, n_neighbors=None) -> np.ndarray:
        """How far each image lies from the fitted images: its k-th neighbour's distance.

        Parameters
        ----------
        X : array-like, sequence of paths or torch Dataset, default=None
            Images to score against the fitted ones; ``None`` scores the
            fitted images, each leaving itself out (see Notes of
            :class:`ImageIndex` for when to prefer which).
        n_neighbors : int, default=None
            Which neighbour's distance (the k of k-th); ``None`` takes
            ``self.n_neighbors``.

        Returns
        -------
        scores : ndarray of shape (n_images,)
            Cosine distances (float32) in [0, 2]; higher is more outlying.
        """
        check_is_fitted(self)
        k = self._check_k(n_neighbors, X is None)
        distances, _ = self._neighbours(X, k)
        return distances[:, -1]

    def _images(self, X):
        """``X``, or the fitted images where it is None."""
        return self._fit_X if X is None else X

    def _check_k(self, n_neighbors, self_query: bool) -> int:
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        most = self.n_samples_fit_ - self_query
        if not isinstance(k, Integral) or isinstance(k, bool) or not 1 <= k <= most:
            among = "other fitted images" if self_query else "fitted images"
            raise ValueError(f"n_neighbors must be an int in [1, {most}] (the {among}); got {k!r}.")
        return int(k)

    def _neighbours(self, X, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest fitted images of each query; ``X=None`` leaves each image out."""
        if X is not None:
            queries = unit_rows(self.transformer.transform(X))
            return _in_chunks(self._search.nearest, queries, k)
        return self_neighbours(self._search, self.features_, k)


def self_neighbours(search, features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest of each indexed row among the others (``features`` is the index's)."""
    distances, indices = _in_chunks(search.nearest, features, k + 1)
    # Drop each image's own entry; with exact copies it need not come first,
    # and where it is missing (more than k copies) the farthest goes.
    own = indices == np.arange(len(indices))[:, None]
    own[~own.any(axis=1), -1] = True
    keep = ~own
    return distances[keep].reshape(-1, k), indices[keep].reshape(-1, k)


def duplicate_groups(search, features: np.ndarray, threshold: float) -> list[np.ndarray]:
    """Connected components of at least two rows of the radius graph at ``threshold``."""
    n = len(features)
    rows, columns = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for start in range(0, n, QUERY_CHUNK):
        chunk = features[start : start + QUERY_CHUNK]
        for offset, found in enumerate(search.radius(chunk, threshold)):
            found = found[found != start + offset]
            rows.append(np.full(len(found), start + offset, dtype=np.int64))
            columns.append(found)
    rows, columns = np.concatenate(rows), np.concatenate(columns)
    graph = csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, columns)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    groups = [np.flatnonzero(component == c) for c in np.flatnonzero(sizes > 1)]
    return sorted(groups, key=lambda group: (-len(group), group[0]))


def unit_rows(features: np.ndarray) -> np.ndarray:
    """``features`` as float32 rows of unit length; all-zero rows stay zero."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, np.finfo(np.float32).tiny)


def _in_chunks(search, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    found = [search(queries[s : s + QUERY_CHUNK], k) for s in range(0, len(queries), QUERY_CHUNK)]
    if not found:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
    return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])


def resolve_backend(backend: str) -> str:
    if backend == "sklearn":
        return backend
    try:
        import faiss  # noqa: F401
    except ImportError:
        if backend == "faiss":
            raise ImportError(
                "backend='faiss' needs faiss: pip install 'skclusterfit[faiss]' "
                "(or pip install faiss-cpu), or pass backend='sklearn'."
            ) from None
        return "sklearn"
    return "faiss"


def searcher(backend: str, features: np.ndarray):
    return _FaissSearch(features) if backend == "faiss" else _SklearnSearch(features)


class _SklearnSearch:
    """Exact cosine search by scikit-learn's brute force."""

    def __init__(self, features: np.ndarray):
        self.model = NearestNeighbors(metric="cosine", algorithm="brute").fit(features)

    def nearest(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        distances, indices = self.model.kneighbors(queries, n_neighbors=k)
        return _ordered(distances, indices)

    def radius(self, queries: np.ndarray, threshold: float) -> list[np.ndarray]:
        found = self.model.radius_neighbors(queries, radius=threshold, return_distance=False)
        return [np.asarray(f, dtype=np.int64) for f in found]


class _FaissSearch:
    """Exact cosine search as faiss's inner product over unit rows."""

    def __init__(self, features: np.ndarray):
        import faiss

        self.index = faiss.IndexFlatIP(features.shape[1])
        self.index.add(np.ascontiguousarray(features))

    def nearest(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        similarity, indices = self.index.search(np.ascontiguousarray(queries), k)
        return _ordered(1.0 - similarity, indices)

    def radius(self, queries: np.ndarray, threshold: float) -> list[np.ndarray]:
        # faiss keeps similarities strictly above its radius; a hair below
        # 1 - threshold keeps distances equal to the threshold, as scikit-learn does.
        radius = float(np.nextafter(np.float32(1.0 - threshold), np.float32(-2.0)))
        limits, _, indices = self.index.range_search(np.ascontiguousarray(queries), radius)
        return [indices[limits[i] : limits[i + 1]].astype(np.int64) for i in range(len(queries))]


def _ordered(distances, indices) -> tuple[np.ndarray, np.ndarray]:
    """Distances clipped to [0, 2] as float32 and each row sorted by (distance, index)."""
    distances = np.clip(np.asarray(distances, dtype=np.float32), 0.0, 2.0)
    indices = np.asarray(indices, dtype=np.int64)
    if not distances.size:
        return distances, indices
    order = np.lexsort((indices, distances), axis=1)
    return np.take_along_axis(distances, order, 1), np.take_along_axis(indices, order, 1)
