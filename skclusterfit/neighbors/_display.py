"""Looks at what an ImageIndex finds, in scikit-learn's Display style: a grid of images."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_is_fitted

from ..metrics._display import _pyplot, draw_rows
from ..metrics._layers import read_images
from ._index import DUPLICATE_THRESHOLD, ImageIndex


def _check_index(index, caller: str) -> None:
    if not isinstance(index, ImageIndex):
        raise TypeError(f"{caller} needs a fitted ImageIndex; got {type(index).__name__}.")
    check_is_fitted(index)


def _fitted_images(index: ImageIndex, positions: np.ndarray) -> np.ndarray:
    """Fitted images at ``positions``, (n, H, W, C) in [0, 1], as the transformer reads them."""
    return read_images(index.transformer, index._fit_X, positions).transpose(0, 2, 3, 1)


def _split(images: np.ndarray, lengths) -> list[np.ndarray]:
    return np.split(images, np.cumsum(lengths)[:-1])


class NeighborsDisplay:
    """Each query image beside its nearest fitted images, one row per query.

    Build it with :meth:`from_index`; the constructor takes what to draw.
    :meth:`plot` draws the grid (needs matplotlib, the ``plot`` extra).

    Parameters
    ----------
    images : list of ndarray of shape (1 + n_neighbors, H, W, C)
        Each row's images in [0, 1]: the query, then its neighbours.
    distances : ndarray of shape (n_queries, n_neighbors)
        Cosine distance of each neighbour to its query.
    indices : ndarray of shape (n_queries, n_neighbors)
        Positions of the neighbours among the index's fitted images.
    names : ndarray of str of shape (n_queries, n_neighbors), default=None
        The neighbours' file names, where the index was fitted on files.

    Attributes
    ----------
    ax_ : ndarray of matplotlib Axes of shape (n_queries, 1 + n_neighbors)
        The grid's axes; column 0 holds the queries.
    figure_ : matplotlib Figure
        The figure of the grid.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit import ClusterFitTransformer
    >>> from skclusterfit.neighbors import ImageIndex, NeighborsDisplay
    >>> X = load_digits().data
    >>> cf = ClusterFitTransformer(n_clusters=5, max_epochs=1, extractor_epochs=1,
    ...                            random_state=0).fit(X[:300])
    >>> index = ImageIndex(cf).fit(X[:300])
    >>> NeighborsDisplay.from_index(index, X[300:303], n_neighbors=4).ax_.shape
    (3, 5)
    """

    def __init__(self, images, distances, indices, *, names=None):
        self.images = images
        self.distances = distances
        self.indices = indices
        self.names = names

    def plot(self, *, ax=None, cmap="gray"):
        """Draw the grid.

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes, default=None
            Where to draw: ``None`` makes a new figure; one Axes is divided
            into the grid; an array of Axes of shape
            ``(n_queries, 1 + n_neighbors)`` is used as the grid.
        cmap : str or matplotlib Colormap, default="gray"
            Colour map of grey images.

        Returns
        -------
        display : NeighborsDisplay
            ``self``, with ``figure_`` and ``ax_``.
        """
        plt = _pyplot("NeighborsDisplay.plot")
        if len(self.images) == 0:
            raise ValueError("The display has no queries to draw.")
        titles = [f"query {q}, then its nearest (cosine distance)" for q in range(len(self.images))]
        captions = [["", *(f"{d:.3f}" for d in row)] for row in self.distances]
        self.ax_ = draw_rows(
            plt, ax, self.images, titles, captions=captions, cmap=cmap, what="query"
        )
        self.figure_ = self.ax_[0, 0].figure
        return self

    @classmethod
    @validate_params(
        {
            "index": "no_validation",  # checked below
            "X": "no_validation",  # as the transformer takes it; checked there
            "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        },
        prefer_skip_nested_validation=True,
    )
    def from_index(cls, index, X, *, n_neighbors=5, ax=None, cmap="gray"):
        """Query images ``X`` beside their ``n_neighbors`` nearest fitted images.

        Parameters
        ----------
        index : ImageIndex
            A fitted index.
        X : array-like, sequence of paths or torch Dataset
            Query images, as the index's transformer takes them; shown as it
            reads them.
        n_neighbors : int, default=5
            Neighbours shown per query.
        ax : matplotlib Axes or array of Axes, default=None
            Where to draw (see :meth:`plot`).
        cmap : str or matplotlib Colormap, default="gray"
            Colour map of grey images.

        Returns
        -------
        display : NeighborsDisplay
            The display, drawn.
        """
        _pyplot("NeighborsDisplay.from_index")
        _check_index(index, "NeighborsDisplay.from_index")
        distances, indices = index.kneighbors(X, n_neighbors=n_neighbors)
        queries = read_images(index.transformer, X).transpose(0, 2, 3, 1)
        found = _fitted_images(index, indices.ravel()).reshape(*indices.shape, *queries.shape[1:])
        images = [np.concatenate([q[None], f]) for q, f in zip(queries, found, strict=True)]
        names = None if index.names_ is None else index.names_[indices]
        return cls(images, distances, indices, names=names).plot(ax=ax, cmap=cmap)


class DuplicatesDisplay:
    """The near-duplicate groups an index finds, one row per group, with its size.

    Build it with :meth:`from_index`; the constructor takes what to draw.

    Parameters
    ----------
    images : list of ndarray of shape (n_shown, H, W, C)
        The images shown of each group, in [0, 1].
    groups : list of ndarray of int
        Each group's positions among the index's fitted images (all of them,
        also those not shown).
    threshold : float
        The cosine distance the groups were found at.
    names : list of ndarray of str, default=None
        Each group's file names, where the index was fitted on files.

    Attributes
    ----------
    ax_ : ndarray of matplotlib Axes of shape (n_groups_shown, n_images)
        The grid's axes.
    figure_ : matplotlib Figure
        The figure of the grid.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit import ClusterFitTransformer
    >>> from skclusterfit.neighbors import DuplicatesDisplay, ImageIndex
    >>> X = load_digits().data[:300]
    >>> cf = ClusterFitTransformer(n_clusters=5, max_epochs=1, extractor_epochs=1,
    ...                            random_state=0).fit(X)
    >>> index = ImageIndex(cf).fit(np.concatenate([X, X[:3]]))  # three exact copies
    >>> display = DuplicatesDisplay.from_index(index, threshold=1e-6)
    >>> [group.tolist() for group in display.groups]
    [[0, 300], [1, 301], [2, 302]]
    """

    def __init__(self, images, groups, threshold, *, names=None):
        self.images = images
        self.groups = groups
        self.threshold = threshold
        self.names = names

    def plot(self, *, ax=None, cmap="gray", n_columns=None):
        """Draw the grid.

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes, default=None
            Where to draw, as in :meth:`NeighborsDisplay.plot`; an array of
            Axes has one row per group shown.
        cmap : str or matplotlib Colormap, default="gray"
            Colour map of grey images.
        n_columns : int, default=None
            Columns of the grid, at least the images of the fullest row.

        Returns
        -------
        display : DuplicatesDisplay
            ``self``, with ``figure_`` and ``ax_``.
        """
        plt = _pyplot("DuplicatesDisplay.plot")
        if len(self.images) == 0:
            raise ValueError(
                f"No near-duplicates within a cosine distance of {self.threshold}: nothing to "
                f"draw. A larger threshold links more images."
            )
        titles = [f"group {g}: {len(group)} images" for g, group in enumerate(self.groups)]
        self.ax_ = draw_rows(
            plt, ax, self.images, titles, cmap=cmap, n_columns=n_columns, what="group"
        )
        self.figure_ = self.ax_[0, 0].figure
        return self

    @classmethod
    @validate_params(
        {
            "index": "no_validation",
            "threshold": [Interval(numbers.Real, 0, 2, closed="both")],
            "n_groups": [Interval(numbers.Integral, 1, None, closed="left")],
            "n_images": [Interval(numbers.Integral, 2, None, closed="left")],
        },
        prefer_skip_nested_validation=True,
    )
    def from_index(
        cls,
        index,
        *,
        threshold=DUPLICATE_THRESHOLD,
        n_groups=10,
        n_images=8,
        ax=None,
        cmap="gray",
    ):
        """The largest near-duplicate groups of the index's fitted images.

        Parameters
        ----------
        index : ImageIndex
            A fitted index.
        threshold : float, default=0.02
            As in :meth:`ImageIndex.duplicates`.
        n_groups : int, default=10
            Groups shown at most, the largest first.
        n_images : int, default=8
            Images shown per group at most (its first ones by position).
        ax : matplotlib Axes or array of Axes, default=None
            Where to draw (see :meth:`plot`).
        cmap : str or matplotlib Colormap, default="gray"
            Colour map of grey images.

        Returns
        -------
        display : DuplicatesDisplay
            The display, drawn; ``groups`` holds the groups shown.
        """
        _pyplot("DuplicatesDisplay.from_index")
        _check_index(index, "DuplicatesDisplay.from_index")
        groups = index.duplicates(threshold)[:n_groups]
        shown = [group[:n_images] for group in groups]
        flat = _fitted_images(index, np.concatenate(shown)) if shown else None
        images = _split(flat, [len(s) for s in shown]) if shown else []
        names = None if index.names_ is None else [index.names_[g] for g in groups]
        display = cls(images, groups, threshold, names=names)
        return display.plot(ax=ax, cmap=cmap, n_columns=n_images)


class OutliersDisplay:
    """The images with the highest outlier scores, most outlying first.

    Build it with :meth:`from_index`; the constructor takes what to draw.

    Parameters
    ----------
    images : ndarray of shape (n_shown, H, W, C)
        The images shown, in [0, 1].
    scores : ndarray of shape (n_shown,)
        Their outlier scores (see :meth:`ImageIndex.outlier_scores`).
    indices : ndarray of shape (n_shown,)
        Their positions among the images scored.

    Attributes
    ----------
    ax_ : ndarray of matplotlib Axes of shape (n_rows, n_columns)
        The grid's axes, filled row by row.
    figure_ : matplotlib Figure
        The figure of the grid.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit import ClusterFitTransformer
    >>> from skclusterfit.neighbors import ImageIndex, OutliersDisplay
    >>> X = load_digits().data[:300]
    >>> cf = ClusterFitTransformer(n_clusters=5, max_epochs=1, extractor_epochs=1,
    ...                            random_state=0).fit(X)
    >>> display = OutliersDisplay.from_index(ImageIndex(cf).fit(X), n_images=12)
    >>> display.ax_.shape
    (2, 8)
    >>> bool((display.scores[:-1] >= display.scores[1:]).all())
    True
    """

    def __init__(self, images, scores, indices):
        self.images = images
        self.scores = scores
        self.indices = indices

    def plot(self, *, ax=None, cmap="gray", n_columns=8):
        """Draw the grid, ``n_columns`` images a row.

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes, default=None
            Where to draw, as in :meth:`NeighborsDisplay.plot`.
        cmap : str or matplotlib Colormap, default="gray"
            Colour map of grey images.
        n_columns : int, default=8
            Images per row.

        Returns
        -------
        display : OutliersDisplay
            ``self``, with ``figure_`` and ``ax_``.
        """
        plt = _pyplot("OutliersDisplay.plot")
        n = len(self.images)
        if n == 0:
            raise ValueError("The display has no images to draw.")
        starts = range(0, n, n_columns)
        rows = [self.images[s : s + n_columns] for s in starts]
        captions = [[f"{x:.3f}" for x in self.scores[s : s + n_columns]] for s in starts]
        titles = ["most outlying (outlier score under each)"] + [""] * (len(rows) - 1)
        self.ax_ = draw_rows(
            plt, ax, rows, titles, captions=captions, cmap=cmap, n_columns=n_columns
        )
        self.figure_ = self.ax_[0, 0].figure
        return self

    @classmethod
    @validate_params(
        {
            "index": "no_validation",
            "X": "no_validation",
            "n_images": [Interval(numbers.Integral, 1, None, closed="left")],
            "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left"), None],
            "n_columns": [Interval(numbers.Integral, 1, None, closed="left")],
        },
        prefer_skip_nested_validation=True,
    )
    def from_index(
        cls,
        index,
        X=None,
        *,
        n_images=16,
        n_neighbors=None,
        ax=None,
        cmap="gray",
        n_columns=8,
    ):
        """The ``n_images`` images of ``X`` (the fitted ones by default) that score highest.

        Parameters
        ----------
        index : ImageIndex
            A fitted index.
        X : array-like, sequence of paths or torch Dataset, default=None
            Images to score against the fitted ones; ``None`` scores the
            fitted images, each leaving itself out.
        n_images : int, default=16
            Images shown.
        n_neighbors : int, default=None
            As in :meth:`ImageIndex.outlier_scores`.
        ax : matplotlib Axes or array of Axes, default=None
            Where to draw (see :meth:`plot`).
        cmap : str or matplotlib Colormap, default="gray"
            Colour map of grey images.
        n_columns : int, default=8
            Images per row.

        Returns
        -------
        display : OutliersDisplay
            The display, drawn.
        """
        _pyplot("OutliersDisplay.from_index")
        _check_index(index, "OutliersDisplay.from_index")
        scores = index.outlier_scores(X, n_neighbors=n_neighbors)
        top = np.argsort(-scores, kind="stable")[:n_images]
        images = read_images(index.transformer, index._images(X), top).transpose(0, 2, 3, 1)
        return cls(images, scores[top], top).plot(ax=ax, cmap=cmap, n_columns=n_columns)
