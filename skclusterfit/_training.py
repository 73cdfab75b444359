"""The one training loop, shared by every stage that trains a network.

The pretext network (rotation prediction or supervised) and the ClusterFit
network N_cf are trained by :func:`train`; features are computed by
:func:`infer`. Both read images from an image source (see ``_inputs``), so they
never hold more than one batch as float tensors.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from . import _distributed as distributed

# Convolutions run faster on NHWC memory (measured in benchmarks/perf_training.py).
CHANNELS_LAST = torch.channels_last


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (see ClusterFitTransformer for their meaning)."""

    epochs: int
    batch_size: int
    learning_rate: float
    lr_schedule: str
    weight_decay: float
    augmentation: str
    balanced_sampling: bool
    device: torch.device
    verbose: int


def resolve_device(device: str) -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; other strings as torch reads them."""
    if device == "auto":
        return _rank_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        resolved = _rank_device(torch.device(device))
    except RuntimeError as exc:
        raise ValueError(f"device={device!r} is not a device torch knows: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available.")
    return resolved


def _rank_device(device: torch.device) -> torch.device:
    """A GPU without an index means this rank's own GPU inside a process group."""
    if device.type == "cuda" and device.index is None and distributed.active():
        return distributed.cuda_device()
    return device


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Seed torch's global generators inside the block and restore them after.

    Layer initialisation and dropout draw from the global generators; forking
    them keeps fits reproducible without changing the caller's random state.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def torch_threads(n_jobs: int | None):
    """Use ``n_jobs`` torch threads inside the block (joblib's meaning for ints)."""
    if n_jobs is None:
        yield
        return
    cores = torch.multiprocessing.cpu_count()
    n_threads = n_jobs if n_jobs > 0 else max(cores + 1 + n_jobs, 1)
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train(
    network: nn.Module,
    source,
    targets: np.ndarray | None,
    config: TrainConfig,
    generator: torch.Generator,
    stage: str,
    checkpoints=None,
) -> list[dict]:
    """Train ``network`` with cross-entropy and return its history.

    Parameters
    ----------
    network : nn.Module
        Maps [0, 1]-scaled images (N, C, H, W) to logits.
    source : image source
        See ``_inputs.ArrayImages``.
    targets : ndarray of shape (n_samples,) or (n_samples, n_outputs), or None
        Class ids in ``[0, n_outputs)``; samples with a negative id are left out.
        A 2-D float array gives class probabilities instead (soft targets, as
        in distillation). ``None`` trains the rotation pretext: each image is
        shown at every rotation and the network predicts which.
    config : TrainConfig
    generator : torch.Generator
        Source of the sampling and augmentation randomness (on the CPU).
    stage : str
        Name of the stage, used in the history, messages and checkpoints.
    checkpoints : Checkpoints or None
        Where the state is saved after every epoch; training resumes from the
        last saved epoch when there is one.

    Returns
    -------
    history : list of dict
        One record per epoch: stage, epoch, loss, accuracy, seconds.

    Notes
    -----
    Inside a process group of several ranks (see ``_distributed``), every rank
    draws the same epoch order and trains on its share of it, with
    ``batch_size`` images per rank and step; gradients are averaged over the
    ranks by ``DistributedDataParallel``, so the network stays the same on
    every rank. Each rank augments its images with its own generator. Only
    rank 0 prints and writes checkpoints (pass ``checkpoints=None`` to the
    others), and it hands its checkpoint to the other ranks on resuming.
    """
    device = config.device
    network.to(device, memory_format=CHANNELS_LAST).train()
    model = network
    if distributed.active():
        ids = [device.index] if device.type == "cuda" else None
        model = DistributedDataParallel(network, device_ids=ids)
    if targets is None or targets.ndim == 2:
        usable = np.arange(len(source))
        labels = None if targets is None else torch.as_tensor(targets, dtype=torch.float32)
    else:
        usable = np.flatnonzero(targets >= 0)
        labels = torch.as_tensor(targets, dtype=torch.long)
    n_local = len(distributed.shard(usable))
    batch_size = min(config.batch_size, n_local)
    steps = math.ceil(n_local / batch_size)
    optimizer = torch.optim.SGD(
        network.parameters(),
        lr=config.learning_rate,
        momentum=0.9,
        nesterov=True,
        weight_decay=config.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(config.lr_schedule, steps, config.epochs)
    )
    weights = _sampling_weights(targets, usable) if config.balanced_sampling else None

    history: list[dict] = []
    first_epoch = 1
    saved = checkpoints.load(stage) if checkpoints is not None else None
    saved = distributed.broadcast(saved)
    if saved is not None:
        network.load_state_dict(saved["network"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        _set_random_states(saved["random"], generator, device)
        history = saved["history"]
        first_epoch = saved["epoch"] + 1
    for epoch in range(first_epoch, config.epochs + 1):
        start = time.perf_counter()
        order = _epoch_order(usable, weights, generator)
        augmenter = generator
        if distributed.active():
            # Drawn from the shared generator, so that the ranks' orders stay
            # in step and a resumed epoch augments as the first run did.
            seed = int(torch.randint(2**62, (1,), generator=generator))
            augmenter = torch.Generator().manual_seed(seed + distributed.rank())
            order = distributed.shard(order)
        verbose = config.verbose if distributed.is_main() else 0
        progress = _Progress(stage, epoch, config.epochs, steps, verbose)
        loss_sum, correct, seen = 0.0, 0, 0
        for indices, images in source.iter_batches(batch_size, order):
            if len(indices) < 2:  # batch norm needs two samples
                continue
            images = augment(images.to(device), config.augmentation, augmenter)
            images = images.contiguous(memory_format=CHANNELS_LAST)
            if labels is None:
                images, batch_targets = rotations(images)
            else:
                batch_targets = labels[indices]
            batch_targets = batch_targets.to(device)
            logits = model(images)
            loss = F.cross_entropy(logits, batch_targets)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"The training loss of stage {stage!r} became {loss.item()} at "
                    f"epoch {epoch}; try a lower learning_rate."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(batch_targets)
            hard = batch_targets if batch_targets.ndim == 1 else batch_targets.argmax(1)
            correct += (logits.argmax(1) == hard).sum().item()
            seen += len(batch_targets)
            progress.step(loss_sum / seen)
        seconds = time.perf_counter() - start
        # Every rank records the same numbers: sums over all ranks' images,
        # and the mean time.
        loss_sum, correct, seen, seconds = distributed.sum_over_ranks(
            [loss_sum, correct, seen, seconds]
        )
        seconds /= distributed.world_size()
        record = {
            "stage": stage,
            "epoch": epoch,
            "loss": loss_sum / max(seen, 1),
            "accuracy": correct / max(seen, 1),
            "seconds": seconds,
        }
        progress.close(record)
        history.append(record)
        if checkpoints is not None:
            checkpoints.save(
                stage,
                {
                    "epoch": epoch,
                    "network": network.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "random": _random_states(generator, device),
                    "history": history,
                },
            )
    distributed.share_buffers(network)
    network.eval()
    return history


def _random_states(generator: torch.Generator, device: torch.device) -> dict:
    """Every random state the loop draws from, to resume it exactly."""
    states = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_random_states(states: dict, generator: torch.Generator, device: torch.device) -> None:
    generator.set_state(states["generator"])
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def infer(
    module: nn.Module,
    source,
    batch_size: int,
    device: torch.device,
    shard: bool = False,
    out_file=None,
) -> np.ndarray:
    """Outputs of ``module`` on every image of ``source``, as float32 (n, d).

    With ``shard=True`` inside a process group, each rank computes a block of
    the images and every rank gets all the outputs, in memory. All ranks must
    then call it together, so ``transform`` (which a script may call on one
    rank only) does not shard. Otherwise, with ``out_file``, the outputs are
    written batch by batch to that ``.npy`` file and returned memory-mapped,
    so that they need not fit in memory.
    """
    module.to(device, memory_format=CHANNELS_LAST).eval()
    n = len(source)
    shard = shard and distributed.active()
    rows = distributed.block(n) if shard else np.arange(n)
    # A rank with no block (fewer images than ranks) still runs one image to
    # learn the output width the gather needs.
    order = rows if len(rows) else np.arange(1)
    to_disk = out_file is not None and not shard
    outputs = []
    with torch.inference_mode():
        for indices, images in source.iter_batches(batch_size, order):
            images = images.to(device).contiguous(memory_format=CHANNELS_LAST)
            batch = module(images).flatten(1).float().cpu().numpy()
            if not to_disk:
                outputs.append(batch)
                continue
            if not outputs:  # the width is known from the first batch
                outputs.append(
                    np.lib.format.open_memmap(out_file, "w+", np.float32, (n, batch.shape[1]))
                )
            outputs[0][indices] = batch
    if to_disk:
        outputs[0].flush()
        return outputs[0]
    local = np.concatenate(outputs)[: len(rows)]
    return distributed.gather_blocks(local, n) if shard else local


def augment(images: torch.Tensor, level: str, generator: torch.Generator) -> torch.Tensor:
    """Random crops, flips and (``"strong"``) brightness/contrast, on the whole batch.

    ``"light"``: shifts of up to 1/8 of the image and horizontal flips.
    ``"strong"``: random resized crops keeping 50-100% of the area (aspect
    ratio 3/4 to 4/3), flips, and brightness and contrast changes of up to 40%.
    Crops are one ``affine_grid`` + ``grid_sample`` for the whole batch.
    """
    if level == "none":
        return images
    n, _, height, width = images.shape
    draws = torch.rand((n, 6), generator=generator).to(images.device)
    flip = torch.where(draws[:, 0] < 0.5, -1.0, 1.0)
    if level == "light":
        scale_x = scale_y = torch.ones(n, device=images.device)
        shift_x, shift_y = (draws[:, 1] - 0.5) * 0.5, (draws[:, 2] - 0.5) * 0.5
    else:
        area = 0.5 + 0.5 * draws[:, 1]
        ratio = torch.exp((draws[:, 2] - 0.5) * 2 * math.log(4 / 3))
        scale_x = torch.sqrt(area * ratio).clamp(max=1.0)
        scale_y = torch.sqrt(area / ratio).clamp(max=1.0)
        shift_x = (1 - scale_x) * (2 * draws[:, 3] - 1)
        shift_y = (1 - scale_y) * (2 * draws[:, 4] - 1)
    if height == 1:  # a row signal: crop along its length only
        scale_y, shift_y = torch.ones_like(scale_y), torch.zeros_like(shift_y)
    theta = torch.zeros((n, 2, 3), device=images.device)
    theta[:, 0, 0] = scale_x * flip
    theta[:, 0, 2] = shift_x
    theta[:, 1, 1] = scale_y
    theta[:, 1, 2] = shift_y
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if level == "strong":
        jitter = torch.rand((n, 2), generator=generator).to(images.device)
        contrast = (0.6 + 0.8 * jitter[:, 0]).view(-1, 1, 1, 1)
        brightness = (0.8 * jitter[:, 1] - 0.4).view(-1, 1, 1, 1)
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = ((out - mean) * contrast + mean + brightness * mean).clamp(0.0, 1.0)
    return out


def rotations(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image at every rotation, with the rotation's index as its target.

    Square images are rotated by 0, 90, 180 and 270 degrees; others (which a
    quarter turn would reshape) by 0 and 180 degrees.
    """
    turns = (0, 1, 2, 3) if images.shape[2] == images.shape[3] else (0, 2)
    rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in turns])
    targets = torch.arange(len(turns)).repeat_interleave(len(images))
    return rotated, targets


def _schedule(kind: str, steps_per_epoch: int, epochs: int):
    """Learning-rate factor per step: constant, or one warm-up epoch then cosine decay."""
    total = steps_per_epoch * epochs
    warmup = steps_per_epoch if epochs > 1 else 0

    def factor(step: int) -> float:
        if kind == "constant":
            return 1.0
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _sampling_weights(targets: np.ndarray | None, usable: np.ndarray) -> torch.Tensor | None:
    """Weights that make every class equally likely to be drawn (DeepCluster's sampler)."""
    if targets is None or targets.ndim == 2:
        return None
    counts = np.bincount(targets[usable])
    return torch.as_tensor(1.0 / counts[targets[usable]], dtype=torch.float64)


def _epoch_order(usable: np.ndarray, weights, generator: torch.Generator) -> np.ndarray:
    """Sample indices for one epoch: a shuffle, or a class-balanced draw."""
    if weights is None:
        positions = torch.randperm(len(usable), generator=generator)
    else:
        positions = torch.multinomial(weights, len(usable), replacement=True, generator=generator)
    return usable[positions.numpy()]


class _Progress:
    """A one-line progress bar on stderr per epoch, shown when ``verbose >= 1``."""

    width = 30

    def __init__(self, stage: str, epoch: int, epochs: int, steps: int, verbose: int):
        self.label = f"{stage} epoch {epoch}/{epochs}"
        self.steps, self.done, self.verbose = steps, 0, verbose

    def step(self, loss: float) -> None:
        self.done += 1
        if self.verbose >= 1:
            filled = self.width * self.done // self.steps
            bar = "#" * filled + "." * (self.width - filled)
            sys.stderr.write(f"\r{self.label} [{bar}] loss {loss:.4f}")
            sys.stderr.flush()

    def close(self, record: dict) -> None:
        if self.verbose >= 1:
            sys.stderr.write(
                f"\r{self.label} [{'#' * self.width}] loss {record['loss']:.4f} "
                f"accuracy {record['accuracy']:.3f} ({record['seconds']:.1f}s)\n"
            )
            sys.stderr.flush()
