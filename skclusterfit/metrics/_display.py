"""A look at the clusters: sample images of each, in scikit-learn's Display style."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._layers import check_clusterfit, clusters_and_confidence, read_images


def _pyplot(caller: str):
    """``matplotlib.pyplot``, or an ImportError that says what to install."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            f"{caller} needs matplotlib: pip install 'skclusterfit[plot]' "
            f"(or pip install matplotlib)."
        ) from None
    return plt


class ClusterDisplay:
    """Sample images of each cluster, one row per cluster, with its size.

    Build it with :meth:`from_estimator`, which groups images by
    :meth:`ClusterFitTransformer.predict <skclusterfit.ClusterFitTransformer.predict>`
    and picks each cluster's samples; the constructor takes images already
    chosen. :meth:`plot` draws the grid (needs matplotlib, the ``plot`` extra).

    Parameters
    ----------
    images : list of ndarray of shape (n_shown, H, W, C)
        The images shown in each row, float in [0, 1]; ``C`` is 1 (grey, drawn
        with ``cmap``), 3 (RGB) or 4 (RGBA).
    clusters : array-like of shape (n_rows,)
        The cluster id of each row.
    sizes : array-like of shape (n_rows,)
        How many images each cluster holds (shown in the row's title).
    indices : list of ndarray of shape (n_shown,), default=None
        Where each shown image is in the images the display was made from.
    confidences : list of ndarray of shape (n_shown,), default=None
        N_cf's confidence that each shown image belongs to its cluster.

    Attributes
    ----------
    ax_ : ndarray of matplotlib Axes of shape (n_rows, n_columns)
        The grid's axes, one row per cluster; cells past a cluster's images
        are blank. ``n_columns`` is the ``n_columns`` given to :meth:`plot`
        (``n_images`` in :meth:`from_estimator`), so the grid's shape follows
        from the parameters whatever the clusters hold.
    figure_ : matplotlib Figure
        The figure of the grid.

    See Also
    --------
    skclusterfit.datasets.export_clusters : Writes each cluster's image files
        into a folder of its own.

    Notes
    -----
    **Which images.** With ``order="nearest"``, a cluster's samples are the
    images N_cf is surest belong to it: the highest softmax probability of the
    cluster over N_cf's cluster logits. It stands in for "nearest the centre"
    of the k-means clusters and is defined for unseen images as well, so the
    display of a held-out set shows the clusters N_cf would put it in. With
    ``order="random"``, they are drawn at random among the cluster's images.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit import ClusterFitTransformer
    >>> from skclusterfit.metrics import ClusterDisplay
    >>> X = load_digits().data
    >>> cf = ClusterFitTransformer(n_clusters=5, max_epochs=1, extractor_epochs=1,
    ...                            random_state=0).fit(X[:300])
    >>> display = ClusterDisplay.from_estimator(cf, X[300:600], n_images=6, clusters=[0, 1])
    >>> display.ax_.shape
    (2, 6)
    >>> int(sum(display.sizes)) <= 300
    True
    """

    def __init__(self, images, clusters, sizes, *, indices=None, confidences=None):
        self.images = images
        self.clusters = clusters
        self.sizes = sizes
        self.indices = indices
        self.confidences = confidences

    def plot(self, *, ax=None, cmap="gray", n_columns=None):
        """Draw the grid.

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes, default=None
            Where to draw: ``None`` makes a new figure; one Axes is divided
            into the grid (its own frame hidden); an array of Axes of shape
            ``(n_rows, n_columns)`` is used as the grid.
        cmap : str or matplotlib Colormap, default="gray"
            Colour map of grey images.
        n_columns : int, default=None
            Columns of the grid, at least the number of images of the fullest
            row; ``None`` takes that number.

        Returns
        -------
        display : ClusterDisplay
            ``self``, with ``figure_`` and ``ax_``.
        """
        plt = _pyplot("ClusterDisplay.plot")
        if len(self.clusters) == 0:
            raise ValueError("The display has no clusters to draw.")
        titles = [
            f"cluster {cluster}: {size} {'image' if size == 1 else 'images'}"
            for cluster, size in zip(self.clusters, self.sizes, strict=True)
        ]
        self.ax_ = draw_rows(
            plt, ax, self.images, titles, cmap=cmap, n_columns=n_columns, what="cluster"
        )
        self.figure_ = self.ax_[0, 0].figure
        return self

    @classmethod
    @validate_params(
        {
            "estimator": "no_validation",  # checked below, with a hint for a pipeline
            "X": "no_validation",  # as predict takes it; checked there
            "n_images": [Interval(numbers.Integral, 1, None, closed="left")],
            "clusters": ["array-like", None],
            "order": [StrOptions({"nearest", "random"})],
            "random_state": ["random_state"],
        },
        prefer_skip_nested_validation=True,
    )
    def from_estimator(
        cls,
        estimator,
        X,
        *,
        n_images=8,
        clusters=None,
        order="nearest",
        ax=None,
        random_state=None,
        cmap="gray",
    ):
        """Sample images of each cluster of ``X``, as a fitted ClusterFit groups them.

        Parameters
        ----------
        estimator : ClusterFitTransformer
            A fitted transformer.
        X : array-like, sequence of paths or torch Dataset
            Images, as ``estimator.predict`` takes them: those it was fitted
            on or unseen ones. They are shown as ``estimator`` reads them:
            image files resized and converted to the fitted size and colour
            mode, values scaled to [0, 1].
        n_images : int, default=8
            Images shown per cluster (fewer for a cluster that holds fewer).
        clusters : array-like of int, default=None
            The clusters shown, one row each in this order; ``None`` shows
            every cluster that holds an image of ``X``, by id.
        order : {"nearest", "random"}, default="nearest"
            Which images: those N_cf is surest belong to the cluster, surest
            first, or a random draw (see Notes of :class:`ClusterDisplay`).
        ax : matplotlib Axes or array of Axes, default=None
            Where to draw (see :meth:`plot`); an array of Axes has shape
            ``(n_rows, n_images)``.
        random_state : int, RandomState instance or None, default=None
            Seeds the draw of ``order="random"``.
        cmap : str or matplotlib Colormap, default="gray"
            Colour map of grey images.

        Returns
        -------
        display : ClusterDisplay
            The display, drawn.
        """
        _pyplot("ClusterDisplay.from_estimator")  # before any work, as scikit-learn's
        check_clusterfit(estimator, "ClusterDisplay.from_estimator")
        labels, confidence = clusters_and_confidence(estimator, X)
        counts = np.bincount(labels, minlength=estimator.n_clusters_)
        clusters = _check_clusters(clusters, counts)
        rng = check_random_state(random_state)
        chosen = []
        for cluster in clusters:
            members = np.flatnonzero(labels == cluster)
            if order == "nearest":
                members = members[np.argsort(-confidence[members], kind="stable")]
                chosen.append(members[:n_images])
            else:
                chosen.append(rng.choice(members, min(n_images, len(members)), replace=False))
        flat = np.concatenate(chosen)
        images = read_images(estimator, X, flat).transpose(0, 2, 3, 1)
        ends = np.cumsum([len(c) for c in chosen])[:-1]
        display = cls(
            np.split(images, ends),
            clusters,
            counts[clusters],
            indices=chosen,
            confidences=[confidence[c] for c in chosen],
        )
        return display.plot(ax=ax, cmap=cmap, n_columns=n_images)


def _check_clusters(clusters, counts: np.ndarray) -> np.ndarray:
    """The cluster ids shown: ``clusters`` checked, or every non-empty one."""
    if clusters is None:
        return np.flatnonzero(counts)
    ids = np.asarray(clusters)
    n_clusters = len(counts)
    if (
        ids.ndim != 1
        or len(ids) == 0
        or ids.dtype.kind not in "iu"
        or ids.min() < 0
        or ids.max() >= n_clusters
        or len(np.unique(ids)) != len(ids)
    ):
        raise ValueError(
            f"clusters must be distinct cluster ids in [0, {n_clusters}), at least one; "
            f"got {clusters!r}."
        )
    return ids.astype(np.int64)


def draw_rows(plt, ax, rows, titles, *, captions=None, cmap="gray", n_columns=None, what="row"):
    """Draw ``rows`` of images (each (n, H, W, C) in [0, 1]) as a grid; return its Axes.

    Each row's title goes above its first image, ``captions`` (a list of
    strings per row) under each image; ``n_columns`` is at least the fullest
    row's length (``None`` takes it). ``what`` names a row in errors.
    """
    fullest = max(1, *(len(row) for row in rows))
    if n_columns is None:
        n_columns = fullest
    elif n_columns < fullest:
        raise ValueError(
            f"n_columns={n_columns} is fewer than the {fullest} images of the fullest row."
        )
    # Captions under the images need room between the rows.
    axes = _grid(plt, ax, len(rows), n_columns, what, 1.05 if captions is None else 1.4)
    for r, images in enumerate(rows):
        for column, cell in enumerate(axes[r]):
            cell.set_axis_off()
            if column < len(images):
                image = np.asarray(images[column])
                grey = image.shape[-1] == 1
                cell.imshow(image[..., 0] if grey else image, cmap=cmap, vmin=0, vmax=1)
                if captions is not None:
                    cell.text(
                        0.5,
                        -0.04,
                        captions[r][column],
                        transform=cell.transAxes,
                        ha="center",
                        va="top",
                        fontsize="x-small",
                    )
        axes[r, 0].set_title(titles[r], loc="left", fontsize="small")
    return axes


def _grid(
    plt, ax, n_rows: int, n_columns: int, what: str = "cluster", row_height: float = 1.05
) -> np.ndarray:
    """A 2-D array of Axes of shape ``(n_rows, n_columns)``, from ``ax`` as :meth:`plot` says."""
    from matplotlib.axes import Axes

    if ax is None:
        size = (0.9 * n_columns + 0.4, row_height * n_rows + 0.2)
        _, axes = plt.subplots(n_rows, n_columns, figsize=size, squeeze=False)
        return axes
    if isinstance(ax, Axes):
        ax.set_axis_off()
        grid = ax.get_subplotspec().subgridspec(n_rows, n_columns)
        return np.array(
            [[ax.figure.add_subplot(grid[r, c]) for c in range(n_columns)] for r in range(n_rows)],
            dtype=object,
        )
    axes = np.asarray(ax, dtype=object)
    if axes.shape != (n_rows, n_columns):
        raise ValueError(
            f"ax must be one Axes or an array of Axes of shape ({n_rows}, {n_columns}): a "
            f"row per {what}, a column per image; got shape {axes.shape}."
        )
    return axes
