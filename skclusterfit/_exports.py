"""Exports of what a fitted model finds in image files: a folder per cluster or per group.

:func:`export_clusters` and :func:`export_duplicates` (public through
:mod:`skclusterfit.datasets`) place the files the same way and list them in a
CSV: the layout of an image-folder data set whose classes are the clusters or
the near-duplicate groups.
"""

from __future__ import annotations

import csv
import numbers
import os
import shutil
from pathlib import Path

from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted

from ._inputs import _streamed_kind
from .metrics._layers import check_clusterfit, clusters_and_confidence
from .neighbors import ImageIndex
from .neighbors._index import DUPLICATE_THRESHOLD


@validate_params(
    {
        "estimator": "no_validation",  # checked below, with a hint for a pipeline
        "paths": "no_validation",  # checked below, for a clearer message
        "folder": [str, os.PathLike],
        "mode": [StrOptions({"link", "copy"})],
    },
    prefer_skip_nested_validation=True,
)
def export_clusters(estimator, paths, folder, *, mode: str = "link") -> Path:
    """Write image files into one sub-folder per cluster, with a CSV of the clusters.

    Each image file goes into ``folder/cluster_<id>/`` (ids zero-padded, such
    as ``cluster_007``), named ``<position>_<file name>`` so that files of the
    same name from different folders stay apart; clusters without an image
    get no folder. The result reads as an image-folder data set whose classes
    are the clusters (:class:`torchvision.datasets.ImageFolder`).
    ``folder/clusters.csv`` lists, one row per path in the order given, the
    ``path``, its ``cluster``, N_cf's ``confidence`` in it and the exported
    ``file`` (relative to ``folder``).

    The clusters are those of ``estimator.predict(paths)``, with the
    confidence :class:`~skclusterfit.metrics.ClusterDisplay` ranks images by:
    the softmax probability of the cluster over N_cf's cluster logits. They
    are consistent for any image files, seen in ``fit`` or not; for the files
    ``estimator`` was fitted on they mostly agree with ``labels_``, the
    k-means clusters N_cf was trained on.

    Parameters
    ----------
    estimator : ClusterFitTransformer
        A fitted transformer.
    paths : sequence of str or path
        Image files, as ``estimator.predict`` takes them.
    folder : str or path
        Where to write; it must not exist or be an empty folder (nothing is
        ever overwritten).
    mode : {"link", "copy"}, default="link"
        ``"link"`` writes symbolic links to the files (absolute paths, so
        they keep working if ``folder`` moves, not if the files do);
        ``"copy"`` copies them.

    Returns
    -------
    csv_path : pathlib.Path
        ``folder/clusters.csv`` (``pandas.read_csv`` reads it).

    Raises
    ------
    TypeError
        When ``estimator`` is not a ClusterFitTransformer or ``paths`` are not
        image file paths.
    sklearn.exceptions.NotFittedError
        When ``estimator`` is not fitted.
    FileExistsError
        When ``folder`` exists and is not an empty folder.
    FileNotFoundError, ValueError
        When a path is missing or a folder (raised before anything is written).

    See Also
    --------
    skclusterfit.metrics.ClusterDisplay : A look at sample images of each cluster.
    """
    check_clusterfit(estimator, "export_clusters")
    paths = _check_paths(paths, "export_clusters")
    folder = _check_new_folder(folder, "export_clusters")
    labels, confidence = clusters_and_confidence(estimator, paths)  # checks the paths first
    digits = max(3, len(str(estimator.n_clusters_ - 1)))
    names = [f"cluster_{cluster:0{digits}d}" for cluster in labels]
    files = _place(paths, range(len(paths)), names, folder, mode)
    rows = [
        (path, int(cluster), f"{confidence[i]:.6f}", files[i])
        for i, (path, cluster) in enumerate(zip(paths, labels, strict=True))
    ]
    return write_csv(folder / "clusters.csv", ["path", "cluster", "confidence", "file"], rows)


@validate_params(
    {
        "index": "no_validation",  # checked below
        "folder": [str, os.PathLike],
        "threshold": [Interval(numbers.Real, 0, 2, closed="both")],
        "mode": [StrOptions({"link", "copy"})],
    },
    prefer_skip_nested_validation=True,
)
def export_duplicates(index, folder, *, threshold=DUPLICATE_THRESHOLD, mode="link") -> Path:
    """Write each near-duplicate group's image files into a sub-folder, with a CSV.

    The groups are those of :meth:`index.duplicates(threshold)
    <skclusterfit.neighbors.ImageIndex.duplicates>`, the largest first: group
    ``g`` goes into ``folder/group_<g>/`` (zero-padded, such as
    ``group_0007``), each file named ``<position>_<file name>`` as
    :func:`export_clusters` names them; images in no group are not written.
    ``folder/duplicates.csv`` lists, one row per image in a group, its
    ``group``, its ``index`` among the fitted images, its ``path`` and the
    exported ``file`` (relative to ``folder``).

    Parameters
    ----------
    index : skclusterfit.neighbors.ImageIndex
        An index fitted on image file paths.
    folder : str or path
        Where to write; it must not exist or be an empty folder.
    threshold : float, default=0.02
        As in :meth:`~skclusterfit.neighbors.ImageIndex.duplicates`.
    mode : {"link", "copy"}, default="link"
        Symbolic links to the files (absolute paths) or copies.

    Returns
    -------
    csv_path : pathlib.Path
        ``folder/duplicates.csv``, written even when there is no group.

    Raises
    ------
    TypeError
        When ``index`` is not an ImageIndex fitted on image file paths.
    FileExistsError
        When ``folder`` exists and is not an empty folder.

    See Also
    --------
    skclusterfit.neighbors.DuplicatesDisplay : A look at the groups.
    """
    if not isinstance(index, ImageIndex):
        raise TypeError(f"export_duplicates needs a fitted ImageIndex; got {type(index).__name__}.")
    check_is_fitted(index)
    if index.names_ is None:
        raise TypeError(
            "export_duplicates needs an ImageIndex fitted on image file paths; this one was "
            "fitted on an array or a Dataset. Its duplicates(threshold) gives the groups."
        )
    folder = _check_new_folder(folder, "export_duplicates")
    groups = index.duplicates(threshold)
    paths = index.names_.tolist()
    members = [int(i) for group in groups for i in group]
    digits = max(4, len(str(len(groups) - 1)))
    group_of = {int(i): g for g, group in enumerate(groups) for i in group}
    names = [f"group_{group_of[i]:0{digits}d}" for i in members]
    files = _place(paths, members, names, folder, mode)
    rows = [(group_of[i], i, paths[i], files[i]) for i in members]
    return write_csv(folder / "duplicates.csv", ["group", "index", "path", "file"], rows)


def _check_paths(paths, caller: str) -> list[str]:
    """``paths`` as a list of str, refusing anything but a non-empty sequence of paths."""
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError(f"paths is a single path ({os.fspath(paths)!r}); pass a list of paths.")
    paths = list(paths)
    if not paths:
        raise ValueError("paths is empty: there are no image files to export.")
    if _streamed_kind(paths) != "paths":
        raise TypeError(
            f"{caller} needs image file paths (str or path objects); paths holds "
            f"{type(next(p for p in paths if not isinstance(p, (str, os.PathLike)))).__name__}."
        )
    return [os.fspath(path) for path in paths]


def _check_new_folder(folder, caller: str) -> Path:
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FileExistsError(
            f"{str(folder)!r} exists and is not an empty folder; {caller} never "
            f"overwrites: pass a new folder."
        )
    return folder


def _place(paths: list[str], positions, names: list[str], folder: Path, mode: str) -> dict:
    """Link or copy ``paths[p]`` into ``folder/<name>/`` for each position; its relative file."""
    folder.mkdir(parents=True, exist_ok=True)
    width = len(str(len(paths) - 1))
    files = {}
    for position, name in zip(positions, names, strict=True):
        path = paths[position]
        relative = Path(name) / f"{position:0{width}d}_{Path(path).name}"
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "link":
            os.symlink(os.path.abspath(path), target)
        else:
            shutil.copy2(path, target)
        files[position] = relative.as_posix()
    return files


def write_csv(path: Path, header: list[str], rows) -> Path:
    """Write ``header`` then ``rows`` (an iterable of rows) as the CSV file ``path``."""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path
