"""Image sources: what every stage reads images from.

An image source gives random access to batches of float32 tensors in
``(N, C, H, W)`` layout with values scaled to ``[0, 1]``, on the device that
computes with them, through one interface: ``len``, ``shape`` (C, H, W),
``iter_batches(batch_size, order, device)``,
``channel_stats()``, ``update_digest(digest)`` (for checkpoint
fingerprints) and ``on_device(device)``, the source to read on a device. Three
kinds exist:

- :class:`ArrayImages`: images held in memory in the caller's dtype (uint8,
  float32, ...), converted one batch at a time, so no float copy of the whole
  set is ever made;
- :class:`DeviceImages`: uint8 arrays copied once to a GPU that can hold them,
  each batch gathered and scaled there (what ``ArrayImages.on_device`` gives
  for training and inference on CUDA);
- :class:`StreamedImages`: image files or a torch Dataset, decoded one batch
  at a time by a DataLoader, so they are never all in memory.

8-bit images stay uint8 until they reach the computing device, a quarter of
the bytes of float32 to copy there, and are scaled to [0, 1] on it.

Sources are built, and their inputs validated, by ``_inputs``; an image file
that cannot be decoded is found only when it is read, and reported here.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ._compat import warn
from ._devices import to_device

CHANNEL_COUNTS = (1, 3, 4)


class ImageSource:
    """What every image source shares: batching, layout and streamed statistics.

    A subclass gives ``__len__``, ``shape`` and ``_read(chunks)``, which yields
    one ``(N, H, W, C)`` tensor per chunk of indices: uint8 (0-255), or
    float32 in [0, 1].
    """

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, int, int]:
        """Image shape as (C, H, W)."""
        raise NotImplementedError

    def _read(self, chunks: list[np.ndarray]) -> Iterator[torch.Tensor]:
        raise NotImplementedError

    def iter_batches(
        self, batch_size: int, order: np.ndarray | None = None, device: torch.device | None = None
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Yield ``(indices, images)`` over ``order`` (default: all, in order).

        ``images`` is a float32 tensor (N, C, H, W) scaled to [0, 1], on
        ``device`` (None: where the source reads them). 8-bit images are
        scaled there, after the copy.
        """
        for indices, images in self.iter_read(batch_size, order):
            if device is not None:
                images = to_device(images, device)
            # NHWC memory seen as NCHW is channels_last, the layout conv kernels prefer.
            yield indices, _scaled(images).permute(0, 3, 1, 2)

    def iter_read(
        self, batch_size: int, order: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Yield ``(indices, images)`` as read, before any copy to a device.

        ``images`` is an (N, H, W, C) tensor, uint8 (0-255) for 8-bit
        images, else float32 in [0, 1]: all the work a GPU waits for.
        """
        if order is None:
            order = np.arange(len(self))
        chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        yield from zip(chunks, self._read(chunks), strict=True)

    def on_device(self, device: torch.device) -> ImageSource:
        """The source to read on ``device``: this one, but for arrays a GPU can hold."""
        return self

    def channel_stats(self, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and standard deviation of the scaled images."""
        channels = self.shape[0]
        total = np.zeros(channels)
        total_sq = np.zeros(channels)
        for _, batch in self.iter_batches(batch_size):
            values = batch.transpose(0, 1).reshape(channels, -1).double()
            total += values.sum(1).cpu().numpy()
            total_sq += (values**2).sum(1).cpu().numpy()
        count = len(self) * self.shape[1] * self.shape[2]
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


class ArrayImages(ImageSource):
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
        _, height, width, channels = self.images.shape
        return (channels, height, width)

    def _read(self, chunks: list[np.ndarray]) -> Iterator[torch.Tensor]:
        for indices in chunks:
            if self.images.dtype == np.uint8:  # scaled by iter_batches
                yield torch.from_numpy(np.ascontiguousarray(self.images[indices]))
                continue
            # Other dtypes are scaled in float64, one batch at a time, so that
            # any finite values, however large, map into [0, 1]. Halves keep
            # the range finite even for data spanning the float64 range.
            chunk = np.asarray(self.images[indices], dtype=np.float64)
            chunk = (chunk * 0.5 - self.low * 0.5) / (self.high * 0.5 - self.low * 0.5)
            yield torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))

    def update_digest(self, digest) -> None:
        """Feed the images to ``digest`` (a hashlib object), one image at a time."""
        digest.update(f"{self.images.shape}{self.images.dtype}".encode())
        for row in self.images:  # no copy of the whole set
            digest.update(np.ascontiguousarray(row).data)

    def on_device(self, device: torch.device) -> ImageSource:
        """uint8 images copied once to a CUDA ``device`` when they take at most
        ``DEVICE_SHARE`` of its free memory (:class:`DeviceImages`); else this source.
        """
        if device.type != "cuda" or self.images.dtype != np.uint8:
            return self
        free, _ = torch.cuda.mem_get_info(device)
        if self.images.nbytes > DEVICE_SHARE * free:
            return self
        images = torch.from_numpy(np.ascontiguousarray(self.images)).to(device)
        return DeviceImages(images, self)


# The most of a GPU's free memory that uint8 images held there may take: the
# rest is for the network, its activations and the optimiser.
DEVICE_SHARE = 0.25


class DeviceImages(ImageSource):
    """uint8 images held as one tensor where the networks compute, read by index there.

    Each batch is gathered and scaled on the tensor's device, so that training
    on a GPU does no host-side work and no copy per step: one copy of the
    images per stage, one of each epoch's order. Batches equal
    :class:`ArrayImages`' of the same images, bit for bit (the same uint8
    values, scaled by :func:`_scaled`).

    Parameters
    ----------
    images : torch.Tensor of shape (n_samples, H, W, C), uint8
        The images, on any device (the CPU too).
    parent : ImageSource
        The source they came from, whose length, shape and digest they share.
    """

    def __init__(self, images: torch.Tensor, parent: ImageSource):
        self.images = images
        self.parent = parent

    def __len__(self) -> int:
        return len(self.parent)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.parent.shape

    def _read(self, chunks: list[np.ndarray]) -> Iterator[torch.Tensor]:
        # The whole order goes to the device in one copy, then is cut into the chunks.
        order = np.concatenate(chunks).astype(np.int64, copy=False)
        on_device = torch.from_numpy(order).to(self.images.device)
        for indices in on_device.split([len(chunk) for chunk in chunks]):
            yield self.images.index_select(0, indices)

    def update_digest(self, digest) -> None:
        self.parent.update_digest(digest)


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
    item, where: str, size: tuple[int, int], channels: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """One item as an (H, W, C) array at ``size`` with ``channels`` channels.

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
        if array.shape[:2] != size:
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
    if out.shape[:2] != size:
        out = _resize(np.ascontiguousarray(out), size).clip(0.0, 1.0)
    return np.ascontiguousarray(out), as_read


def _scaled(images: torch.Tensor) -> torch.Tensor:
    """uint8 images as float32 in [0, 1]; float images as they are.

    The same float32 arithmetic as ``ArrayImages._read``, so that the same
    uint8 images give the same tensors from files, Datasets and arrays.
    """
    if images.dtype != torch.uint8:
        return images
    return images.to(torch.float32).mul_(np.float32(1.0 / 255.0).item())


def _collate(batch: list) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of (image, own size) pairs: uint8 if every image is, else float32."""
    images, sizes = zip(*batch, strict=True)
    if any(image.dtype != torch.uint8 for image in images):
        images = [_scaled(image) for image in images]
    return torch.stack(images), torch.stack(sizes)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An (H, W) or (H, W, C) uint8 or float32 image resized to ``size``.

    Bilinear with antialiasing (torch's kernel; for uint8 the same filter as
    PIL's bilinear resize), in the image's own dtype.
    """
    pixels = torch.from_numpy(image.reshape(*image.shape[:2], -1)).permute(2, 0, 1)[None]
    resized = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False, antialias=True)
    return resized[0].permute(1, 2, 0).numpy().reshape(*size, *image.shape[2:])


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
    ``benchmarks/perf_decode.py`` compares the draft mode with).
    """

    def __init__(self, items, kind: str, size: tuple[int, int], channels: int, draft=True):
        self.items, self.kind = items, kind
        self.size, self.channels = size, channels
        self.draft = draft

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        draft = (self.size, self.channels) if self.draft else None
        item, own_size = read_item(self.items, index, self.kind, draft=draft)
        where = item_name(self.items, index, self.kind)
        image, as_read = _to_pixels(item, where, self.size, self.channels)
        # A Dataset's item is its own size as it came; a file's, before any draft.
        return torch.from_numpy(image), torch.tensor(own_size or as_read)


class StreamedImages(ImageSource):
    """Images decoded from files or a torch Dataset, a batch at a time.

    Batches are assembled by a ``torch.utils.data.DataLoader`` with
    ``num_workers`` worker processes, in the order asked for, so only the
    batches in flight are ever in memory.

    Parameters
    ----------
    decoder : Decoder
        Decodes, converts and resizes one image.
    identity : list of tuple or None
        ``(path, size, mtime)`` of every file, what the checkpoint fingerprint
        hashes; None for a Dataset, whose images are hashed instead.
    num_workers : int
        DataLoader worker processes (0 decodes in the calling process).
    size_chosen : bool
        Whether the user chose the size (``image_size``); if not, the first
        image resized to the first image's size is warned about, once.
    """

    def __init__(self, decoder: Decoder, identity, num_workers: int, size_chosen: bool = True):
        self.decoder = decoder
        self.identity = identity
        self.num_workers = num_workers
        self.unwarned = not size_chosen

    def __len__(self) -> int:
        return len(self.decoder)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.decoder.channels, *self.decoder.size)

    def _read(self, chunks: list[np.ndarray]) -> Iterator[torch.Tensor]:
        batches = [indices.tolist() for indices in chunks]
        loader = DataLoader(
            self.decoder,
            batch_sampler=batches,
            num_workers=self.num_workers,
            collate_fn=_collate,
        )
        for indices, (images, sizes) in zip(batches, loader, strict=True):
            resized = (sizes != torch.tensor(self.decoder.size)).any(1)
            if self.unwarned and resized.any():
                first = int(resized.int().argmax())
                self._warn_of_resizing(indices[first], tuple(sizes[first].tolist()))
            yield images

    def _warn_of_resizing(self, index: int, own_size: tuple[int, int]) -> None:
        self.unwarned = False
        (height, width), (own_height, own_width) = self.decoder.size, own_size
        item = item_name(self.decoder.items, index, self.decoder.kind)
        warn(
            f"The images differ in size: {item} is {own_height}x{own_width} pixels. Every "
            f"image is resized to {height}x{width}, the size of the first image given to "
            f"fit; pass image_size=(height, width) to fit to choose the size (which also "
            f"silences this warning)."
        )

    def update_digest(self, digest) -> None:
        """Feed the files' paths, sizes and times, or a Dataset's images, to ``digest``."""
        digest.update(f"{self.shape}{len(self)}".encode())
        if self.identity is not None:
            for path, size, mtime in self.identity:
                digest.update(f"{path}\0{size}\0{mtime}\0".encode())
            return
        for _, images in self.iter_batches(256):
            digest.update(images.contiguous().numpy().data)
