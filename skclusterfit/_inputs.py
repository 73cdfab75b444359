"""Input validation.

Every error about the data given to ``fit`` or ``transform`` is raised here or,
for the layout of an array's rows, in ``_layouts`` (but for a file that turns
out undecodable when it is read). What is checked
becomes an image source (see ``_sources``), the only view of the images the
rest of the package has: arrays laid out as ``(n, H, W, C)`` from flat rows
and ``image_shape`` or from N-D arrays; image files and torch Datasets with
their size and colour mode fixed by ``fit``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import validate_data
from torch.utils.data import Dataset, Subset

from ._checkpoints import unfingerprintable
from ._compat import warn
from ._decoding import Decoder, describe_item, item_name, read_item
from ._extractors import TRAINED_EXTRACTORS
from ._layouts import ROWS_PER_CHECK, flat_layout, nd_layout, warn_of_flattened_images
from ._sources import ArrayImages, ImageSource, StreamedImages

_RAGGED = (
    "X holds items that differ in shape or kind: give images of one shape (an array, or "
    "a list of equal-sized arrays or PIL images), a list of image file paths, or a torch "
    "Dataset, whose images may differ in size."
)


def check_fit_inputs(estimator, X, y) -> tuple[ImageSource, np.ndarray | None]:
    """Validate the data and the folders given to ``fit``.

    Returns the images as a source, and the labels as class ids ``0 .. k-1``
    where the extractor learns them (``extractor="supervised"``), else None.
    """
    counts = cluster_counts(estimator.n_clusters)
    _check_folders(estimator)
    _check_extractor_weights(estimator.extractor, estimator.extractor_weights)
    source = check_images(estimator, X, reset=True)
    labels = _check_labels(estimator.extractor, y, len(source))
    several = not isinstance(estimator.n_clusters, Integral)
    _check_cluster_counts(counts, len(source), several)
    for position, count in enumerate(counts):
        # An int is named as before; an entry of a list by its position too.
        named = f"n_clusters[{position}]={count}" if several else f"n_clusters={count}"
        if count == 1:
            what = (
                "one head of N_cf a single class to predict, which leaves that head nothing "
                "to learn."
                if several
                else "N_cf a single class to predict, which leaves it nothing to learn: its "
                "features are those of an untrained network."
            )
            warn(f"{named} gives {what}")
    return source, labels


def _check_cluster_counts(counts: list[int], n_images: int, several: bool) -> None:
    """Refuse more clusters than images, saying how many images there are.

    For a list, every impossible entry is named and none is dropped: the
    clusterings asked for are the clusterings fitted, or none is.
    """
    impossible = [(position, count) for position, count in enumerate(counts) if count > n_images]
    if not impossible:
        return
    advice = f"a clustering of these images can have at most {n_images} clusters"
    if not several:
        raise ValueError(
            f"n_clusters={counts[0]} is larger than the number of samples: X holds "
            f"{n_images} images, so {advice}; pass n_clusters={n_images} or fewer."
        )
    named = ", ".join(f"n_clusters[{position}]={count}" for position, count in impossible)
    raise ValueError(
        f"{named} {'is' if len(impossible) == 1 else 'are'} larger than the number of "
        f"samples: X holds {n_images} images, so {advice}; remove or lower "
        f"{'that entry' if len(impossible) == 1 else 'those entries'}."
    )


def cluster_counts(n_clusters) -> list[int]:
    """The ``n_clusters`` parameter as a list of ints, one per clustering.

    An int is one clustering; a list or tuple of ints >= 1 is one clustering
    (and one head of N_cf) per entry. The parameter's type is checked by
    ``_parameter_constraints``; its entries are checked here.
    """
    if isinstance(n_clusters, Integral):
        return [int(n_clusters)]
    start = (
        f"The 'n_clusters' parameter of ClusterFitTransformer must be an int >= 1 or a "
        f"non-empty list or tuple of ints >= 1. Got {n_clusters!r} instead"
    )
    if len(n_clusters) == 0:
        raise InvalidParameterError(f"{start}: it names no clustering.")
    for position, count in enumerate(n_clusters):
        if isinstance(count, (list, tuple)):
            raise InvalidParameterError(
                f"{start}: entry {position} is a {type(count).__name__}; give one flat "
                f"list, one number of clusters per clustering."
            )
        if not isinstance(count, Integral) or isinstance(count, (bool, np.bool_)):
            raise InvalidParameterError(
                f"{start}: entry {position}, {count!r}, is a {type(count).__name__}, not an int."
            )
        if count < 1:
            raise InvalidParameterError(
                f"{start}: entry {position} is {count}; every number of clusters must be 1 or more."
            )
    return [int(count) for count in n_clusters]


def _check_extractor_weights(extractor, weights) -> None:
    """``extractor_weights`` only with a torchvision extractor, which alone reads them."""
    if weights is None or (isinstance(extractor, str) and extractor not in TRAINED_EXTRACTORS):
        return
    described = repr(extractor) if isinstance(extractor, str) else type(extractor).__name__
    raise ValueError(
        f"extractor_weights names the weights of a torchvision extractor, but the "
        f"extractor is {described}; leave extractor_weights=None."
    )


def _check_folders(estimator) -> None:
    """``checkpoint_dir`` and ``features_dir`` must be folders (or creatable ones).

    ``checkpoint_dir`` also needs parameters that a checkpoint fingerprint can
    tell apart from others (see ``_checkpoints.unfingerprintable``).
    """
    for name in ("checkpoint_dir", "features_dir"):
        folder = getattr(estimator, name)
        if folder is not None:
            _check_folder(name, folder)
    if estimator.checkpoint_dir is None:
        return
    culprit = unfingerprintable(estimator.get_params(deep=False))
    if culprit is not None:
        raise ValueError(
            f"checkpoint_dir cannot be used with this {culprit}: a function or lambda is "
            f"known only by its name, which another can share, so a fit with another "
            f"could resume these checkpoints. Pass an nn.Module, or a method of one such "
            f"as a fitted network_.features (told apart by their weights), or leave "
            f"checkpoint_dir=None."
        )


def _check_folder(name: str, folder) -> None:
    """``folder`` must be a folder, or a path where one can be made."""
    if os.fspath(folder) == "":
        raise ValueError(f"{name}='' names no folder: give a path, or None.")
    path = Path(folder)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "is a file" if existing == path else f"is inside {str(existing)!r}, a file"
        raise ValueError(f"{name} must be a folder; {str(folder)!r} {where}.")


def _check_labels(extractor, y, n_samples: int) -> np.ndarray | None:
    """Class ids of ``y`` for a supervised extractor; None for the others, which ignore it."""
    supervised = isinstance(extractor, str) and extractor == "supervised"
    if y is None:
        if supervised:
            raise ValueError("extractor='supervised' trains N_pre on the labels y: pass y to fit.")
        return None
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_samples:
        raise ValueError(
            f"y must be a 1-D array with one label per sample ({n_samples}); got shape {y.shape}."
        )
    if not supervised:
        return None
    missing = np.flatnonzero(_missing(y))
    if len(missing):
        raise ValueError(
            f"y has {len(missing)} missing labels (NaN or None), the first at index "
            f"{missing[0]}: extractor='supervised' needs a label for every image."
        )
    try:
        classes, ids = np.unique(y, return_inverse=True)
    except TypeError as exc:
        raise TypeError(f"The labels y cannot be sorted into classes ({exc}).") from None
    if len(classes) == 1:
        warn("y holds a single class: the supervised extractor has nothing to learn from it.")
    return ids.reshape(-1)


def _missing(y: np.ndarray) -> np.ndarray:
    """Which labels are missing: NaN, NaT, None or pandas.NA."""
    if y.dtype.kind in "fc":
        return np.isnan(y)
    if y.dtype.kind in "mM":
        return np.isnat(y)
    if y.dtype.kind != "O":
        return np.zeros(len(y), dtype=bool)
    return np.array([value is None or _differs_from_itself(value) for value in y], dtype=bool)


def _differs_from_itself(value) -> bool:
    """True for NaN; pandas.NA, which has no truth value, counts too."""
    try:
        return bool(value != value)
    except TypeError:
        return True


def check_images(estimator, X, *, reset: bool) -> ImageSource:
    """Validate ``X`` and return it as an image source.

    With ``reset=True`` (in ``fit``) the layout is inferred from ``X`` and the
    estimator's ``image_shape`` parameter and stored as ``image_shape_`` together
    with the value range (``input_range_``). With ``reset=False`` (in
    ``transform``) the layout and range found in ``fit`` are reused and ``X``
    must match them.

    Sequences of file paths and torch Datasets are validated by
    :func:`_check_streamed` instead.
    """
    streamed = _streamed_kind(X)
    if streamed is not None:
        return _check_streamed(estimator, X, streamed, reset=reset)
    if isinstance(X, (list, tuple)):
        X = _as_array(X)  # a list of equal-sized images (arrays, PIL images) is an N-D array
    nd_shape, channels_first, given_shape = None, False, None
    if getattr(X, "ndim", 2) > 2:
        X = np.asarray(X)
        given_shape = X.shape
        if X.ndim != 3 and X.ndim != 4:
            raise ValueError(
                f"Expected a 2-D array (n_samples, n_features) or images of shape "
                f"(n, H, W), (n, H, W, C) or (n, C, H, W); got an array with "
                f"{X.ndim} dimensions."
            )
        nd_shape, channels_first = nd_layout(X.shape)
        X = X.reshape(X.shape[0], -1)

    try:
        X = validate_data(
            estimator,
            X,
            reset=reset,
            dtype="numeric",
            ensure_min_samples=2 if reset else 1,
        )
    except ValueError as exc:
        if "could not convert" in str(exc):
            raise ValueError(f"X must hold numbers (images as pixel values): {exc}") from None
        if "with a sequence" in str(exc):  # numpy's words for items of other shapes
            raise ValueError(_RAGGED) from None
        if str(exc).startswith("Input X contains"):  # NaN, infinity, a value too large
            raise ValueError(_not_finite(X)) from None
        raise
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold real numbers; got dtype {X.dtype}.")

    if reset:
        shape = nd_shape or flat_layout(estimator.image_shape, X.shape[1])
        if given_shape is not None or isinstance(estimator.image_shape, str):
            warn_of_flattened_images(given_shape or X.shape, None if given_shape else X)
    else:
        shape = nd_shape or estimator.image_shape_
        if tuple(shape) != tuple(estimator.image_shape_):
            raise ValueError(
                f"X holds images of shape (H, W, C) = {tuple(shape)}, but "
                f"{type(estimator).__name__} was fitted on images of shape "
                f"{tuple(estimator.image_shape_)}."
            )
    height, width, channels = shape
    if channels_first:
        images = X.reshape(-1, channels, height, width).transpose(0, 2, 3, 1)
    else:
        images = X.reshape(-1, height, width, channels)

    if reset:
        size = estimator.image_size
        if size is not None and _check_size(size) != (height, width):
            raise ValueError(
                f"image_size={size!r} resizes image files and Datasets only; X is an "
                f"array of {height}x{width} images. Resize the array, or leave "
                f"image_size=None."
            )
        estimator.image_shape_ = (height, width, channels)
        estimator.input_range_ = _value_range(images)
    return ArrayImages(images, estimator.input_range_)


def _not_finite(X) -> str:
    """Which image of ``X`` (one image a row) holds NaN or inf, in words about images."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        X = X.astype(np.float64)  # as validate_data converted it
    for start in range(0, len(X), ROWS_PER_CHECK):  # no boolean copy of the whole X
        bad = ~np.isfinite(X[start : start + ROWS_PER_CHECK]).all(axis=1)
        if bad.any():
            row = start + int(np.argmax(bad))
            break
    else:  # a value too large for the dtype scikit-learn converted to
        return "X holds values too large to compute with (infinity): images must be finite."
    values = X[row][~np.isfinite(X[row])]
    what = "NaN" if np.isnan(values).any() else "infinity"
    return (
        f"X[{row}] (image {row} of X) holds {what}: {values.size} of its {X[row].size} "
        f"values are NaN or inf, and images must hold finite pixel values. Replace or "
        f"drop the images with missing or infinite values."
    )


def _value_range(images: np.ndarray) -> tuple[float, float]:
    """The range mapped to [0, 1]: 0..255 for uint8, the data's range otherwise."""
    if images.dtype == np.uint8:
        return (0.0, 255.0)
    low, high = float(images.min()), float(images.max())
    if high <= low:  # constant images: any wider range maps them to 0
        high = low + 1.0 if low + 1.0 > low else float(np.nextafter(low, np.inf))
    return (low, high)


def _streamed_kind(X) -> str | None:
    """``"paths"``, ``"dataset"`` or None (an array-like) for the ``X`` given."""
    if isinstance(X, Dataset):
        return "dataset"
    if isinstance(X, (str, os.PathLike)):
        raise TypeError(f"X is a single path ({os.fspath(X)!r}); pass a list of image file paths.")
    if isinstance(X, Iterator):
        raise TypeError(
            f"X is an iterator ({type(X).__name__}), which can be read only once; pass an "
            f"array, a list of image file paths or a map-style torch Dataset."
        )
    is_sequence = isinstance(X, (list, tuple)) or (
        isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "OU"
    )
    if not is_sequence:
        return None
    if len(X) == 0:
        raise ValueError("X is an empty sequence: there are no images.")
    if all(isinstance(item, (str, os.PathLike)) for item in X):
        return "paths"
    return None


def _as_array(X) -> np.ndarray:
    """A list or tuple of images (or of rows) as one array, or a ValueError saying why not."""
    try:
        return np.asarray(X)
    except ValueError:
        raise ValueError(_RAGGED) from None


def _check_size(image_size) -> tuple[int, int]:
    """``image_size`` as (height, width)."""
    size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else image_size
    if not (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, (int, np.integer)) and s > 0 for s in size)
    ):
        raise ValueError(
            f"image_size must be None, a positive int or (height, width) with positive "
            f"integers; got {image_size!r}."
        )
    return (int(size[0]), int(size[1]))


def _check_streamed(estimator, X, kind: str, *, reset: bool) -> StreamedImages:
    """Validate image files or a torch Dataset and return them as a streamed source.

    In ``fit``, the image size is ``image_size`` or the first image's, and the
    colour mode (grey or RGB) the first image's; in ``transform`` both are those
    found in ``fit``, and every image is resized and converted to them.
    """
    if kind == "paths":
        items = [os.fspath(path) for path in X]
        stamps = []
        for index, path in enumerate(items):
            try:
                info = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                raise FileNotFoundError(
                    f"Image file {path!r} (X[{index}]) does not exist."
                ) from None
            if stat.S_ISDIR(info.st_mode):
                raise ValueError(f"X[{index}] is a folder, not an image file: {path!r}.")
            stamps.append((path, info.st_size, info.st_mtime_ns))
        identity = stamps
    else:
        try:
            n_items = len(X)
        except TypeError:
            raise TypeError(
                f"X is a {type(X).__name__} without a length; pass a map-style torch "
                f"Dataset (with __len__ and __getitem__)."
            ) from None
        if n_items == 0:
            raise ValueError("X is an empty Dataset: there are no images.")
        items, identity = X, None

    if reset:
        if len(items) < 2:
            raise ValueError(f"fit needs at least 2 images; X holds {len(items)}.")
        first, _ = read_item(items, 0, kind)
        height, width, channels, is_uint8 = describe_item(first, item_name(items, 0, kind))
        if estimator.image_size is not None:
            height, width = _check_size(estimator.image_size)
        estimator.image_shape_ = (height, width, channels)
        estimator.input_range_ = (0.0, 255.0) if is_uint8 else (0.0, 1.0)
        estimator.n_features_in_ = height * width * channels
        if hasattr(estimator, "feature_names_in_"):  # left from a fit on a DataFrame
            del estimator.feature_names_in_
    height, width, channels = estimator.image_shape_
    if channels not in (1, 3):
        raise ValueError(
            f"Image files and Datasets give grey or RGB images, but "
            f"{type(estimator).__name__} was fitted on images with {channels} channels."
        )
    decoder = Decoder(items, kind, (height, width), channels)
    # Only fit chooses the size, so only fit warns of resizing: a fit_transform warns once.
    size_chosen = not reset or estimator.image_size is not None
    return StreamedImages(decoder, identity, estimator.num_workers, size_chosen=size_chosen)


def images_at(X, indices: np.ndarray):
    """The images ``X[indices]``: rows of an array or a DataFrame, items of a list or Dataset."""
    if isinstance(X, Dataset):
        return Subset(X, indices.tolist())
    if isinstance(X, (list, tuple)):
        return [X[i] for i in indices]
    if hasattr(X, "iloc"):
        return X.iloc[indices]
    return np.asarray(X)[indices]
