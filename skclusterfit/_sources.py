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
  at a time by a DataLoader, so they are never all in memory; for a GPU,
  images smaller than the size are enlarged there, not by the decoding
  processes.

8-bit images stay uint8 until they reach the computing device, a quarter of
the bytes of float32 to copy there, and are scaled to [0, 1] on it.

Sources are built, and their inputs validated, by ``_inputs``; files and
Dataset items are decoded by ``_decoding``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from ._compat import warn
from ._decoding import Decoder, _collate, _scaled, _unpacked, item_name
from ._devices import to_device


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
        images, else float32 in [0, 1]: all the work a GPU waits for. (A
        :class:`StreamedImages` that leaves enlarging to the device gives
        ``(flat, shapes)``: the images one after another, and their shapes.)
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


class StreamedImages(ImageSource):
    """Images decoded from files or a torch Dataset, a batch at a time.

    Batches are assembled by a ``torch.utils.data.DataLoader`` with
    ``num_workers`` worker processes, in the order asked for, so only the
    batches in flight are ever in memory. For a GPU (``on_device``), the
    decoding processes shrink images larger than the size but leave smaller
    ones as they are, to be enlarged on the GPU: the fewer bytes to copy there.

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
        # Shared with the copy on_device makes, so that a fit warns once.
        self.warning = {"due": not size_chosen}

    def __len__(self) -> int:
        return len(self.decoder)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.decoder.channels, *self.decoder.size)

    def on_device(self, device: torch.device) -> ImageSource:
        """On a CUDA ``device``, this source with the enlarging left to the device."""
        if device.type != "cuda" or not self.decoder.enlarge:
            return self
        source = copy.copy(self)
        source.decoder = copy.copy(self.decoder)
        source.decoder.enlarge = False
        return source

    def iter_batches(
        self, batch_size: int, order: np.ndarray | None = None, device: torch.device | None = None
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        if self.decoder.enlarge:
            yield from super().iter_batches(batch_size, order, device)
            return
        for indices, (flat, shapes) in self.iter_read(batch_size, order):
            if device is not None:
                flat = to_device(flat, device)
            yield indices, _unpacked(flat, shapes, self.decoder.size)

    def _read(self, chunks: list[np.ndarray]) -> Iterator:
        """Stacked batches, or with ``decoder.enlarge`` off, packed ones (:func:`_collate`)."""
        batches = [indices.tolist() for indices in chunks]
        loader = DataLoader(
            self.decoder,
            batch_sampler=batches,
            num_workers=self.num_workers,
            collate_fn=functools.partial(_collate, packed=not self.decoder.enlarge),
        )
        for indices, (images, sizes) in zip(batches, loader, strict=True):
            resized = (sizes != torch.tensor(self.decoder.size)).any(1)
            if self.warning["due"] and resized.any():
                first = int(resized.int().argmax())
                self._warn_of_resizing(indices[first], tuple(sizes[first].tolist()))
            yield images

    def _warn_of_resizing(self, index: int, own_size: tuple[int, int]) -> None:
        self.warning["due"] = False
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
