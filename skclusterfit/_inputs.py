"""Input validation and image layout.

Every error about the data given to ``fit`` or ``transform`` is raised here. The
rest of the package sees only an image source: random access to batches of
float32 tensors in ``(N, C, H, W)`` layout with values scaled to ``[0, 1]``.
Arrays stay in the caller's dtype (uint8, float32, ...) and are converted one
batch at a time, so no float copy of the whole set is ever made; image files
and torch Datasets are decoded one batch at a time by a DataLoader, so they are
never all in memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.validation import validate_data
from torch.utils.data import DataLoader, Dataset

_CHANNEL_COUNTS = (1, 3, 4)


def check_fit_inputs(estimator, X, y) -> ArrayImages:
    """Validate the data given to ``fit``: images, labels and ``n_clusters``."""
    source = check_images(estimator, X, reset=True)
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(source):
            raise ValueError(
                f"y must be a 1-D array with one label per sample ({len(source)}); "
                f"got shape {y.shape}."
            )
    if estimator.n_clusters > len(source):
        raise ValueError(
            f"n_clusters={estimator.n_clusters} is larger than the number of "
            f"samples ({len(source)})."
        )
    return source


def check_images(estimator, X, *, reset: bool) -> ArrayImages:
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
    nd_shape, channels_first = None, False
    if getattr(X, "ndim", 2) > 2:
        X = np.asarray(X)
        if X.ndim != 3 and X.ndim != 4:
            raise ValueError(
                f"Expected a 2-D array (n_samples, n_features) or images of shape "
                f"(n, H, W), (n, H, W, C) or (n, C, H, W); got an array with "
                f"{X.ndim} dimensions."
            )
        nd_shape, channels_first = _nd_layout(X.shape)
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
        raise
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold real numbers; got dtype {X.dtype}.")

    if reset:
        shape = nd_shape or _flat_layout(estimator.image_shape, X.shape[1])
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


def _nd_layout(shape: tuple[int, ...]) -> tuple[tuple[int, int, int], bool]:
    """Image shape (H, W, C) of an N-D array and whether channels come first."""
    if len(shape) == 3:
        return (shape[1], shape[2], 1), False
    if shape[3] in _CHANNEL_COUNTS and shape[1] not in _CHANNEL_COUNTS:
        return (shape[1], shape[2], shape[3]), False
    if shape[1] in _CHANNEL_COUNTS:
        return (shape[2], shape[3], shape[1]), True
    raise ValueError(
        f"Cannot tell the channel axis of images with shape {tuple(shape)}: "
        f"expected (n, H, W, C) or (n, C, H, W) with C in {_CHANNEL_COUNTS}."
    )


def _flat_layout(image_shape, n_features: int) -> tuple[int, int, int]:
    """Image shape (H, W, C) of flat rows of ``n_features`` values."""
    if isinstance(image_shape, str):  # "auto", the only string the constraints allow
        side = math.isqrt(n_features)
        if side * side == n_features:
            return (side, side, 1)
        return (1, n_features, 1)
    shape = tuple(image_shape)
    if len(shape) not in (2, 3) or not all(
        isinstance(s, (int, np.integer)) and s > 0 for s in shape
    ):
        raise ValueError(
            f"image_shape must be 'auto', (H, W) or (H, W, C) with positive "
            f"integers; got {image_shape!r}."
        )
    if len(shape) == 2:
        shape = (*shape, 1)
    if math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} describes {math.prod(shape)} values per "
            f"image, but X has {n_features} features."
        )
    return tuple(int(s) for s in shape)


def _value_range(images: np.ndarray) -> tuple[float, float]:
    """The range mapped to [0, 1]: 0..255 for uint8, the data's range otherwise."""
    if images.dtype == np.uint8:
        return (0.0, 255.0)
    low, high = float(images.min()), float(images.max())
    if high <= low:  # constant images: any wider range maps them to 0
        high = low + 1.0 if low + 1.0 > low else float(np.nextafter(low, np.inf))
    return (low, high)


class _ImageSource:
    """What every image source shares: statistics computed in one streaming pass."""

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, int, int]:
        raise NotImplementedError

    def iter_batches(self, batch_size: int, order: np.ndarray | None = None):
        raise NotImplementedError

    def channel_stats(self, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and standard deviation of the scaled images."""
        channels = self.shape[0]
        total = np.zeros(channels)
        total_sq = np.zeros(channels)
        for _, batch in self.iter_batches(batch_size):
            values = batch.transpose(0, 1).reshape(channels, -1).double()
            total += values.sum(1).numpy()
            total_sq += (values**2).sum(1).numpy()
        count = len(self) * self.shape[1] * self.shape[2]
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


class ArrayImages(_ImageSource):
    """Images held in memory, converted to float tensors one batch at a time.

    Parameters
    ----------
    images : ndarray of shape (n_samples, H, W, C)
        Any real dtype; may be a non-contiguous view.
    value_range : tuple of float
        ``(low, high)`` mapped to ``(0, 1)``.
    """

    def __init__(self, images: np.ndarray, value_range: tuple[float, float]):
        self.images = images
        self.low, self.high = value_range

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Image shape as (C, H, W)."""
        _, height, width, channels = self.images.shape
        return (channels, height, width)

    def batch(self, indices: np.ndarray) -> torch.Tensor:
        """Images ``indices`` as a float32 tensor (N, C, H, W) scaled to [0, 1]."""
        # uint8 is exact in float32; other dtypes are scaled in float64, one batch
        # at a time, so that any finite values, however large, map into [0, 1].
        if self.images.dtype == np.uint8:
            chunk = np.ascontiguousarray(self.images[indices], dtype=np.float32)
            chunk *= 1.0 / 255.0
        else:
            chunk = np.asarray(self.images[indices], dtype=np.float64)
            # Halves keep the range finite even for data spanning the float64 range.
            chunk = (chunk * 0.5 - self.low * 0.5) / (self.high * 0.5 - self.low * 0.5)
            chunk = np.ascontiguousarray(chunk, dtype=np.float32)
        # NHWC memory seen as NCHW is channels_last, the layout conv kernels prefer.
        return torch.from_numpy(chunk).permute(0, 3, 1, 2)

    def iter_batches(
        self, batch_size: int, order: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Yield ``(indices, batch)`` pairs over ``order`` (default: all, in order)."""
        if order is None:
            order = np.arange(len(self))
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            yield indices, self.batch(indices)

    def update_digest(self, digest) -> None:
        """Feed the images to ``digest`` (a hashlib object), one image at a time."""
        digest.update(f"{self.images.shape}{self.images.dtype}".encode())
        for row in self.images:  # no copy of the whole set
            digest.update(np.ascontiguousarray(row).data)


# ---------------------------------------------------------------------------
# Image files and torch Datasets, decoded one batch at a time.


def _streamed_kind(X) -> str | None:
    """``"paths"``, ``"dataset"`` or None (an array-like) for the ``X`` given."""
    if isinstance(X, Dataset):
        return "dataset"
    if isinstance(X, (str, os.PathLike)):
        raise TypeError(f"X is a single path ({os.fspath(X)!r}); pass a list of image file paths.")
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
            except OSError:
                raise FileNotFoundError(
                    f"Image file {path!r} (X[{index}]) does not exist or cannot be read."
                ) from None
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
        first = _read(items, 0, kind)
        height, width, channels, is_uint8 = _describe(first, _where(items, 0, kind))
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
    decoder = _Decoder(items, kind, (height, width), channels)
    return StreamedImages(decoder, identity, estimator.num_workers)


def _where(items, index: int, kind: str) -> str:
    """How error messages name item ``index``."""
    return f"image file {items[index]!r} (X[{index}])" if kind == "paths" else f"X[{index}]"


def _read(items, index: int, kind: str):
    """Item ``index``: a decoded PIL image for a path, the Dataset's item otherwise."""
    if kind != "paths":
        item = items[index]
        # Datasets of labelled images (torchvision's, for one) return (image, label).
        return item[0] if isinstance(item, (tuple, list)) and item else item
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(items[index]) as image:
            image.load()
            return image
    except FileNotFoundError:
        raise FileNotFoundError(f"Image {_where(items, index, kind)} does not exist.") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"Cannot decode {_where(items, index, kind)}: {exc}") from None


def _describe(item, where: str) -> tuple[int, int, int, bool]:
    """Height, width, channel count (1 grey, 3 colour) and whether values are 0-255."""
    from PIL import Image

    if isinstance(item, Image.Image):
        grey = Image.getmodebase(item.mode) == "L"
        return item.height, item.width, 1 if grey else 3, True
    array = _as_hwc(item, where)
    return array.shape[0], array.shape[1], 1 if array.shape[2] == 1 else 3, array.dtype == np.uint8


def _as_hwc(item, where: str) -> np.ndarray:
    """An array or tensor item as an (H, W, C) array, checked."""
    if isinstance(item, torch.Tensor):
        tensor = item.detach().cpu()
        if tensor.ndim == 2:
            tensor = tensor[None]
        if tensor.ndim != 3:
            raise ValueError(
                f"{where} is a tensor of shape {tuple(item.shape)}; expected (C, H, W) or (H, W)."
            )
        array = tensor.numpy().transpose(1, 2, 0)
    elif isinstance(item, np.ndarray):
        array = item[:, :, None] if item.ndim == 2 else item
        if array.ndim != 3:
            raise ValueError(f"{where} is an array of shape {item.shape}; expected (H, W, C).")
    else:
        raise TypeError(
            f"{where} is a {type(item).__name__}; a Dataset must return PIL images, "
            f"(H, W, C) arrays or (C, H, W) tensors, or (image, label) tuples of them."
        )
    if array.shape[2] not in _CHANNEL_COUNTS:
        raise ValueError(
            f"{where} has {array.shape[2]} channels (shape {item.shape}); expected "
            f"1 (grey), 3 (RGB) or 4 (RGBA)."
        )
    if array.dtype != np.uint8 and array.dtype.kind != "f":
        raise TypeError(
            f"{where} has dtype {array.dtype}; expected uint8 (0-255) or floats in [0, 1]."
        )
    return array


def _to_float(item, where: str, size: tuple[int, int], channels: int) -> np.ndarray:
    """One item as float32 (H, W, C) in [0, 1] at ``size`` with ``channels`` channels.

    PIL images are converted ("L" or "RGB") and resized (bilinear) by PIL; arrays
    and tensors have their alpha channel dropped, grey repeated or colour
    weighted (ITU-R 601 luma, as PIL does), and are resized by bilinear
    interpolation with antialiasing.
    """
    from PIL import Image

    height, width = size
    if isinstance(item, Image.Image):
        image = item.convert("L" if channels == 1 else "RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        item = np.asarray(image)
    array = _as_hwc(item, where)
    if array.dtype == np.uint8:
        # The same float32 arithmetic as ArrayImages.batch, so that the same
        # uint8 images give the same tensors from files, Datasets and arrays.
        out = np.array(array, dtype=np.float32)
        out *= 1.0 / 255.0
    else:
        out = np.array(array, dtype=np.float32)
        if not np.isfinite(out).all() or out.min() < 0.0 or out.max() > 1.0:
            raise ValueError(
                f"{where} holds float values outside [0, 1] (min {out.min()}, max "
                f"{out.max()}); float images must be scaled to [0, 1] (the networks "
                f"normalise their inputs themselves)."
            )
    if out.shape[2] == 4:
        out = out[:, :, :3]
    if out.shape[2] == 3 and channels == 1:
        out = out @ np.array([[0.299], [0.587], [0.114]], dtype=np.float32)
    elif out.shape[2] == 1 and channels == 3:
        out = np.repeat(out, 3, axis=2)
    if out.shape[:2] != (height, width):
        resized = F.interpolate(
            torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))[None],
            size=(height, width),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        out = resized[0].clamp(0.0, 1.0).numpy().transpose(1, 2, 0)
    return np.ascontiguousarray(out)


class _Decoder(Dataset):
    """Item ``i`` of files or a Dataset as a float32 tensor (H, W, C) in [0, 1]."""

    def __init__(self, items, kind: str, size: tuple[int, int], channels: int):
        self.items, self.kind = items, kind
        self.size, self.channels = size, channels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> torch.Tensor:
        item = _read(self.items, index, self.kind)
        where = _where(self.items, index, self.kind)
        return torch.from_numpy(_to_float(item, where, self.size, self.channels))


class StreamedImages(_ImageSource):
    """Images decoded from files or a torch Dataset, a batch at a time.

    Batches are assembled by a ``torch.utils.data.DataLoader`` with
    ``num_workers`` worker processes, in the order asked for, so only the
    batches in flight are ever in memory.

    Parameters
    ----------
    decoder : _Decoder
        Decodes, converts and resizes one image.
    identity : list of tuple or None
        ``(path, size, mtime)`` of every file, what the checkpoint fingerprint
        hashes; None for a Dataset, whose images are hashed instead.
    num_workers : int
        DataLoader worker processes (0 decodes in the calling process).
    """

    def __init__(self, decoder: _Decoder, identity, num_workers: int):
        self.decoder = decoder
        self.identity = identity
        self.num_workers = num_workers

    def __len__(self) -> int:
        return len(self.decoder)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Image shape as (C, H, W)."""
        return (self.decoder.channels, *self.decoder.size)

    def iter_batches(
        self, batch_size: int, order: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Yield ``(indices, batch)`` pairs over ``order`` (default: all, in order)."""
        if order is None:
            order = np.arange(len(self))
        loader = DataLoader(
            self.decoder,
            batch_size=batch_size,
            sampler=order.tolist(),
            num_workers=self.num_workers,
        )
        for start, images in zip(range(0, len(order), batch_size), loader, strict=True):
            # NHWC memory seen as NCHW is channels_last, the layout conv kernels prefer.
            yield order[start : start + batch_size], images.permute(0, 3, 1, 2)

    def update_digest(self, digest) -> None:
        """Feed the files' paths, sizes and times, or a Dataset's images, to ``digest``."""
        digest.update(f"{self.shape}{len(self)}".encode())
        if self.identity is not None:
            for path, size, mtime in self.identity:
                digest.update(f"{path}\0{size}\0{mtime}\0".encode())
            return
        for _, images in self.iter_batches(256):
            digest.update(images.contiguous().numpy().data)
