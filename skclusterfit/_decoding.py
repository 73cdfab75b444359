"""One image file or Dataset item: decoded, converted, resized, batched.

What the DataLoader of a :class:`~skclusterfit._sources.StreamedImages`
runs, in the calling process or in its worker processes: :class:`Decoder`
reads item ``i`` (a JPEG file at the smallest scale that covers the size, in
PIL's draft mode), converts it to grey or RGB and resizes it, keeping 8-bit
images uint8; :func:`_collate` batches the items, stacked or (for a GPU that
enlarges the smaller images itself) packed one after another, and
:func:`_unpacked` turns a packed batch into images on the device. An image
file that cannot be decoded is reported here, when it is read.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ._devices import to_device

CHANNEL_COUNTS = (1, 3, 4)


def item_name(items, index: int, kind: str) -> str:
    """How error messages name item ``index``."""
    return f"image file {items[index]!r} (X[{index}])" if kind == "paths" else f"X[{index}]"


def read_item(items, index: int, kind: str, draft: tuple | None = None):
    """Item ``index`` and its own (height, width), or None where it cannot tell yet.

    The item is a decoded PIL image for a path, the Dataset's item otherwise.
    With ``draft``, ``((height, width), channels)`` the image will be resized
    and converted to, a JPEG file is decoded at the smallest of the decoder's
    scales (1/1, 1/2, 1/4, 1/8) that still covers that size, and as grey where
    grey is wanted (PIL's draft mode): most of the decoding time of a photo
    shrunk for training is then never spent.
    """
    if kind != "paths":
        item = items[index]
        # Datasets of labelled images (torchvision's, for one) return (image, label).
        return (item[0] if isinstance(item, (tuple, list)) and item else item), None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(items[index]) as image:
            own_size = (image.height, image.width)
            if draft is not None:
                (height, width), channels = draft
                image.draft("L" if channels == 1 else "RGB", (width, height))
            image.load()
            return image, own_size
    except FileNotFoundError:
        raise FileNotFoundError(f"Image {item_name(items, index, kind)} does not exist.") from None
    except Image.DecompressionBombError as exc:
        # PIL's own message names no file; a folder of thousands needs the name.
        raise ValueError(
            f"Cannot decode {item_name(items, index, kind)}: {exc} Raise "
            "PIL.Image.MAX_IMAGE_PIXELS to read it if it is trusted."
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            # The system could not read the file (no permission, a folder, a disk
            # error): its own message says so. PIL's decoding errors carry no errno.
            raise
        raise ValueError(f"Cannot decode {item_name(items, index, kind)}: {exc}") from None


def describe_item(item, where: str) -> tuple[int, int, int, bool]:
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
    if array.shape[2] not in CHANNEL_COUNTS:
        raise ValueError(
            f"{where} has {array.shape[2]} channels (shape {item.shape}); expected "
            f"1 (grey), 3 (RGB) or 4 (RGBA)."
        )
    if array.dtype != np.uint8 and array.dtype.kind != "f":
        raise TypeError(
            f"{where} has dtype {array.dtype}; expected uint8 (0-255) or floats in [0, 1]."
        )
    return array


def _to_pixels(
    item, where: str, size: tuple[int, int], channels: int, enlarge: bool = True
) -> tuple[np.ndarray, tuple[int, int]]:
    """One item as an (H, W, C) array at ``size`` with ``channels`` channels.

    With ``enlarge=False`` an item of fewer pixels than ``size`` keeps its own
    size (for the device to enlarge).

    8-bit items stay uint8 (0-255) wherever the conversion is exact in
    integers, so that DataLoader workers pass a quarter of the bytes and the
    batch is scaled to [0, 1] at once (:func:`_scaled`); the others, and
    uint8 colour arrays made grey, come as float32 in [0, 1]. Returns the
    array and the item's (height, width) as it came, before resizing (for a
    JPEG decoded in draft mode, the draft's size).

    PIL images are converted ("L" or "RGB") by PIL; arrays and tensors have
    their alpha channel dropped, grey repeated or colour weighted (ITU-R 601
    luma, as PIL does). Both are resized by bilinear interpolation with
    antialiasing: 8-bit images in uint8 (the filter of PIL's own bilinear
    resize, within one level, and several times faster than PIL for colour
    photos), the others in float32.
    """
    from PIL import Image

    as_read = (item.height, item.width) if isinstance(item, Image.Image) else None
    if isinstance(item, Image.Image) and item.mode.startswith(("I", "F")):
        item = _wide_to_float(item, where)
    elif isinstance(item, Image.Image):
        mode = "L" if channels == 1 else "RGB"
        item = np.array(item if item.mode == mode else item.convert(mode))  # convert copies
    array = _as_hwc(item, where)
    as_read = as_read or array.shape[:2]
    as_read = (int(as_read[0]), int(as_read[1]))
    if array.shape[2] == 4:
        array = array[:, :, :3]
    if array.dtype == np.uint8 and not (array.shape[2] == 3 and channels == 1):
        if array.shape[2] == 1 and channels == 3:
            array = np.repeat(array, 3, axis=2)
        if _resized_here(array.shape, size, enlarge):
            array = _resize(np.ascontiguousarray(array), size)
        return np.ascontiguousarray(array), as_read
    if array.dtype == np.uint8:
        out = _scaled(torch.from_numpy(np.ascontiguousarray(array))).numpy()
    else:
        out = np.array(array, dtype=np.float32)
        if not np.isfinite(out).all():
            raise ValueError(
                f"{where} holds NaN or infinity: images must hold finite pixel values, "
                f"float images scaled to [0, 1]."
            )
        if out.min() < 0.0 or out.max() > 1.0:
            raise ValueError(
                f"{where} holds float values outside [0, 1] (min {out.min()}, max "
                f"{out.max()}); float images must be scaled to [0, 1] (the networks "
                f"normalise their inputs themselves)."
            )
    if out.shape[2] == 3 and channels == 1:
        out = out @ np.array([[0.299], [0.587], [0.114]], dtype=np.float32)
    elif out.shape[2] == 1 and channels == 3:
        out = np.repeat(out, 3, axis=2)
    if _resized_here(out.shape, size, enlarge):
        out = _resize(np.ascontiguousarray(out), size).clip(0.0, 1.0)
    return np.ascontiguousarray(out), as_read


def _resized_here(shape: tuple, size: tuple[int, int], enlarge: bool) -> bool:
    """Whether an image of ``shape`` is resized to ``size`` by the decoding process."""
    if tuple(shape[:2]) == tuple(size):
        return False
    return enlarge or shape[0] * shape[1] > size[0] * size[1]


def _scaled(images: torch.Tensor) -> torch.Tensor:
    """uint8 images as float32 in [0, 1]; float images as they are.

    Every source's 8-bit batches are scaled here, where they are computed
    with, so that the same uint8 images give the same tensors from files,
    Datasets and arrays.
    """
    if images.dtype != torch.uint8:
        return images
    return images.to(torch.float32).mul_(np.float32(1.0 / 255.0).item())


def _collate(batch: list, packed: bool = False) -> tuple:
    """A batch of (image, own size) pairs: uint8 if every image is, else float32.

    The images come stacked, or (``packed``, for images of any sizes) laid one
    after another in one flat tensor, with their (H, W, C) shapes.
    """
    images, sizes = zip(*batch, strict=True)
    if any(image.dtype != torch.uint8 for image in images):
        images = [_scaled(image) for image in images]
    if not packed:
        return torch.stack(images), torch.stack(sizes)
    shapes = torch.tensor([tuple(image.shape) for image in images])
    return (torch.cat([image.reshape(-1) for image in images]), shapes), torch.stack(sizes)


def _unpacked(flat: torch.Tensor, shapes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Packed images (:func:`_collate`) scaled and resized to ``size`` where ``flat`` is.

    Images of one shape are resized together, bilinear with antialiasing in
    float32 (within 1/255 of the host's uint8 resize). Returns an (N, C, H, W)
    float32 batch in channels-last memory, as :meth:`ImageSource.iter_batches`.
    Nothing waits for the device: the shapes are on the host, and a batch of
    several shapes is put back in order by an index copied without waiting.
    """
    groups: dict[tuple, list[int]] = {}
    for index, shape in enumerate(shapes.tolist()):
        groups.setdefault(tuple(shape), []).append(index)
    if len(groups) == 1:  # one shape: the flat tensor is the batch
        images = [flat.view(len(shapes), *next(iter(groups)))]
    else:
        pieces = flat.split(shapes.prod(1).tolist())
        images = [torch.stack([pieces[i].view(shape) for i in m]) for shape, m in groups.items()]
    parts = []
    for batch in images:  # (n, H, W, C), one shape
        batch = _scaled(batch)
        if tuple(batch.shape[1:3]) != tuple(size):
            batch = _bilinear(batch.permute(0, 3, 1, 2), size)
            batch = batch.clamp_(0.0, 1.0).permute(0, 2, 3, 1).contiguous()
        parts.append(batch)
    batch = torch.cat(parts) if len(parts) > 1 else parts[0]
    order = [index for members in groups.values() for index in members]
    if order != sorted(order):
        inverse = torch.from_numpy(np.argsort(order))
        batch = batch.index_select(0, to_device(inverse, flat.device))
    # NHWC memory seen as NCHW is channels_last, as for every source.
    return batch.permute(0, 3, 1, 2)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An (H, W) or (H, W, C) uint8 or float32 image resized to ``size`` (:func:`_bilinear`)."""
    pixels = torch.from_numpy(image.reshape(*image.shape[:2], -1)).permute(2, 0, 1)[None]
    return _bilinear(pixels, size)[0].permute(1, 2, 0).numpy().reshape(*size, *image.shape[2:])


def _bilinear(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) images resized to ``size``: the one filter of every resize.

    Bilinear with antialiasing (torch's kernel; for uint8 the same filter as
    PIL's bilinear resize), in the images' own dtype, wherever they are.
    """
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def _wide_to_float(image, where: str) -> np.ndarray:
    """A 16- or 32-bit integer ("I;16", "I") or float ("F") PIL image as floats in [0, 1].

    PIL converts these modes to 8-bit "L" by clipping at 255, which turns a
    16-bit image white: integers are scaled from 0-65535 here instead, and
    floats are taken as they are (then checked to lie in [0, 1]).
    """
    values = np.asarray(image, dtype=np.float32 if image.mode == "F" else np.float64)
    if image.mode == "F":
        return values
    if values.min() < 0 or values.max() > 65535:
        raise ValueError(
            f"{where} is an integer image (PIL mode {image.mode!r}) with values outside "
            f"0-65535 (min {values.min():.0f}, max {values.max():.0f}); 16-bit images are "
            f"read as 0-65535."
        )
    return (values / 65535.0).astype(np.float32)


class Decoder(Dataset):
    """Item ``i`` of files or a Dataset as a tensor (H, W, C), uint8 or float32 in [0, 1].

    Each item comes with its own (height, width), before resizing to ``size``.
    ``draft=False`` decodes every JPEG file at its full size (what
    ``benchmarks/perf_decode.py`` compares the draft mode with);
    ``enlarge=False`` leaves items of fewer pixels than ``size`` at the size
    they are read at, for the device to enlarge: the decoding processes then
    only shrink, and no batch leaves the host larger than it must.
    """

    def __init__(
        self, items, kind: str, size: tuple[int, int], channels: int, draft=True, enlarge=True
    ):
        self.items, self.kind = items, kind
        self.size, self.channels = size, channels
        self.draft, self.enlarge = draft, enlarge

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        draft = (self.size, self.channels) if self.draft else None
        item, own_size = read_item(self.items, index, self.kind, draft=draft)
        where = item_name(self.items, index, self.kind)
        image, as_read = _to_pixels(item, where, self.size, self.channels, self.enlarge)
        # A Dataset's item is its own size as it came; a file's, before any draft.
        return torch.from_numpy(image), torch.tensor(own_size or as_read)
