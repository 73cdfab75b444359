"""Input validation and image layout.

Every error about the data given to ``fit`` or ``transform`` is raised here. The
rest of the package sees only an image source: random access to batches of
float32 tensors in ``(N, C, H, W)`` layout with values scaled to ``[0, 1]``.
The images themselves stay in the caller's dtype (uint8, float32, ...) and are
converted one batch at a time, so no float copy of the whole set is ever made.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from sklearn.utils.validation import validate_data

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
    """
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


class ArrayImages:
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
