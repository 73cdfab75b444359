"""How the rows of an array become images: the layout rules, and the warnings
where the rows look like images of another layout.

Part of the input checks (``_inputs``), which call it; the errors here are
about the layout of an array: its dimensions and ``image_shape``.
"""

from __future__ import annotations

import math

import numpy as np

from ._compat import warn
from ._decoding import CHANNEL_COUNTS

# The smallest side of the square images that flattened arrays are checked for
# (see warn_of_flattened_images): smaller ones are as likely to be tables.
MIN_IMAGE_SIDE = 8
# Rows read at a time when looking through X (no copy of the whole of it is made).
ROWS_PER_CHECK = 1024


def warn_of_flattened_images(shape: tuple[int, ...], X: np.ndarray | None = None) -> None:
    """Warn where ``X`` looks like square images flattened, but is read as other images.

    Rows of ``3 * s * s`` values (``s >= MIN_IMAGE_SIDE``) look like ``s x s`` colour
    images, which ``image_shape="auto"`` reads as ``1 x 3ss`` signals; 3-D arrays
    ``(n, s * s, C)`` or ``(n, C, s * s)`` look like images flattened to pixels, which
    are read as grey ``ss x C`` or ``C x ss`` images. Rows of ``4 * s * s`` values
    are perfect squares, read as grey images, as the digits' 64 and MNIST's 784 are;
    the 2-D ``X`` tells them from flattened RGBA images by its values: every fourth
    value the same in every image, where the rest differ, is an alpha channel.
    Other rows that are not a square number of values, tabular data among them,
    are read as ``1 x n`` images, which is said too.
    """
    if len(shape) == 2:
        if X is not None and looks_like_flat_rgba(X):
            side = square_side(shape[1] // 4)
            warn(
                f"X has rows of {shape[1]} values, which image_shape='auto' reads as "
                f"{2 * side}x{2 * side} grey images, but every fourth value is the same in "
                f"every image, as the alpha channel of {side}x{side} RGBA images flattened "
                f"is. If they are, pass image_shape=({side}, {side}, 4); "
                f"image_shape=({2 * side}, {2 * side}, 1) reads them as grey without this "
                "warning."
            )
            return
        side = square_side(shape[1] // 3) if shape[1] % 3 == 0 else 0
        if side:
            warn(
                f"X has rows of {shape[1]} values, which image_shape='auto' reads as "
                f"1 x {shape[1]} signals. If they are {side}x{side} colour images, pass "
                f"image_shape=({side}, {side}, 3); image_shape=(1, {shape[1]}) reads "
                f"them as signals without this warning."
            )
        elif not square_side(shape[1], smallest=1):
            warn(
                f"X has rows of {shape[1]} values, not a square number, so image_shape='auto' "
                f"reads each row as a 1x{shape[1]} image, as a signal. If the rows are "
                f"images, pass their image_shape=(height, width) or (height, width, "
                f"channels); image_shape=(1, {shape[1]}) reads them as 1x{shape[1]} images "
                f"without this warning. ClusterFit's networks are made for images, not for "
                f"tabular data."
            )
        return
    for channels_at, pixels_at in ((2, 1), (1, 2)):
        channels, side = shape[channels_at], square_side(shape[pixels_at])
        if channels in (3, 4) and side:
            images = (side, side, channels) if channels_at == 2 else (channels, side, side)
            warn(
                f"X has shape {shape}, read as grey images of {shape[1]}x{shape[2]} "
                f"pixels. If it holds {side}x{side} images of {channels} channels "
                f"flattened to pixels, reshape it to {(shape[0], *images)}."
            )


def looks_like_flat_rgba(X: np.ndarray) -> bool:
    """Whether rows of ``4 * s * s`` values hold a constant channel among varying ones."""
    n_features = X.shape[1]
    if n_features % 4 or not square_side(n_features // 4):
        return False
    # A chunk of rows at a time, each as one pixel's four values per row, compared
    # rather than subtracted (bool and small integer types have no safe difference):
    # real grey images leave at the first chunk, and no copy of X is made.
    alpha, colour = X[0, 3], X[0, 0]
    colour_varies = False
    for start in range(0, len(X), ROWS_PER_CHECK):
        pixels = np.asarray(X[start : start + ROWS_PER_CHECK]).reshape(-1, 4)
        if (pixels[:, 3] != alpha).any():
            return False
        colour_varies = colour_varies or bool((pixels[:, :3] != colour).any())
    return colour_varies


def square_side(n_pixels: int, smallest: int = MIN_IMAGE_SIDE) -> int:
    """``s`` where ``n_pixels`` is ``s * s`` and ``s >= smallest``, else 0."""
    side = math.isqrt(n_pixels)
    return side if side * side == n_pixels and side >= smallest else 0


def nd_layout(shape: tuple[int, ...]) -> tuple[tuple[int, int, int], bool]:
    """Image shape (H, W, C) of an N-D array and whether channels come first."""
    if len(shape) == 3:
        return (shape[1], shape[2], 1), False
    if shape[3] in CHANNEL_COUNTS and shape[1] not in CHANNEL_COUNTS:
        return (shape[1], shape[2], shape[3]), False
    if shape[1] in CHANNEL_COUNTS:
        return (shape[2], shape[3], shape[1]), True
    raise ValueError(
        f"Cannot tell the channel axis of images with shape {tuple(shape)}: "
        f"expected (n, H, W, C) or (n, C, H, W) with C in {CHANNEL_COUNTS}."
    )


def flat_layout(image_shape, n_features: int) -> tuple[int, int, int]:
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
