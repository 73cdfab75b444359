"""The one training loop, shared by every stage that trains a network.

The pretext network (rotation prediction or supervised) and the ClusterFit
network N_cf are trained by :func:`train`; features are computed by
:func:`infer`. Both read images from an image source (see ``_sources``), so
they never hold more than one batch as float tensors.

The loop is three parts a reader can name: :class:`TrainState`, everything
that changes while training (network, optimiser, schedule, random states,
history), saved and resumed as one object; :func:`train_one_epoch`; and
:func:`train`, which ties them to checkpoints. What a network is trained to
predict is a targets object (see ``_targets``): the loop never asks which.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import _distributed as distributed
from ._devices import autocast, float32_part, resolve_batch, resolve_precision, to_device
from ._reporting import Reporter
from ._targets import Targets

# Convolutions run faster on NHWC memory (measured in benchmarks/perf_training.py).
CHANNELS_LAST = torch.channels_last


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (see ClusterFitTransformer for their meaning).

    ``autocast_dtype`` is the dtype the network's forward pass runs in during
    training (None: float32); augmentation, the loss and inference stay in
    float32.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    lr_schedule: str
    weight_decay: float
    augmentation: str
    balanced_sampling: bool
    device: torch.device
    autocast_dtype: torch.dtype | None = None


def make_config(
    params: dict,
    *,
    epochs: int,
    device: torch.device,
    image_shape: tuple[int, int, int] | None = None,
) -> TrainConfig:
    """The training settings in an estimator's parameters (``get_params()``).

    ``image_shape`` (C, H, W) is needed only where ``batch_size`` is "auto",
    which is resolved for those images on ``device``.
    """
    batch_size, learning_rate = resolve_batch(
        params["batch_size"], params["learning_rate"], device, image_shape
    )
    return TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        lr_schedule=params["lr_schedule"],
        weight_decay=params["weight_decay"],
        augmentation=params["augmentation"],
        balanced_sampling=params["balanced_sampling"],
        device=device,
        autocast_dtype=resolve_precision(params["precision"], device),
    )


class TrainState:
    """What changes while a network trains; ``state_dict`` saves it, ``load_state_dict`` resumes.

    Parameters
    ----------
    network : nn.Module
        The network being trained (not its DistributedDataParallel wrapper).
    config : TrainConfig
    steps_per_epoch : int
        Optimiser steps per epoch, which the learning-rate schedule counts in.
    generator : torch.Generator
        Source of the sampling and augmentation randomness (on the CPU).
    """

    def __init__(self, network: nn.Module, config: TrainConfig, steps_per_epoch: int, generator):
        self.network = network
        self.device = config.device
        self.generator = generator
        self.optimizer = torch.optim.SGD(
            network.parameters(),
            lr=config.learning_rate,
            momentum=0.9,
            nesterov=True,
            weight_decay=config.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _schedule(config.lr_schedule, steps_per_epoch, config.epochs)
        )
        self.epoch = 0  # epochs finished
        self.history: list[dict] = []

    def step(self, loss: torch.Tensor) -> None:
        """One optimiser step on ``loss``."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()

    def state_dict(self) -> dict:
        """Tensors, numbers and lists only, so checkpoints load without running code."""
        random = {"generator": self.generator.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            random["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "epoch": self.epoch,
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "random": random,
            "history": self.history,
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume from ``state`` (saved on any device; tensors are moved as needed)."""
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["random"]["generator"])
        torch.set_rng_state(state["random"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["random"]:
            torch.cuda.set_rng_state(state["random"]["cuda"], self.device)
        self.epoch = state["epoch"]
        self.history = list(state["history"])


def train(
    network: nn.Module,
    source,
    targets: Targets,
    *,
    config: TrainConfig,
    generator: torch.Generator,
    stage: str,
    checkpoints=None,
    reporter: Reporter | None = None,
) -> list[dict]:
    """Train ``network`` to predict ``targets`` and return its history.

    Parameters
    ----------
    network : nn.Module
        Maps [0, 1]-scaled images (N, C, H, W) to logits.
    source : image source
        See ``_sources.ArrayImages``.
    targets : Targets
        What the network learns to predict (see ``_targets``).
    config : TrainConfig
    generator : torch.Generator
        Source of the sampling and augmentation randomness (on the CPU).
    stage : str
        Name of the stage, used in the history, messages and checkpoints.
    checkpoints : Checkpoints or None
        Where the state is saved after every epoch; training resumes from the
        last saved epoch when there is one.
    reporter : Reporter or None
        Shows a progress bar over the stage's steps, the loss and accuracy at
        the end of every epoch, and the stage's time; None prints nothing.

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
    network.to(config.device, memory_format=CHANNELS_LAST).train()
    model = distributed.wrap(network, config.device)
    source = source.on_device(config.device)
    n_local = len(distributed.shard(targets.indices))
    if n_local < 2:
        raise ValueError(
            f"Stage {stage!r} has {n_local} image(s) to train on per process; batch "
            f"normalisation needs at least 2 (fewer images than processes, or a "
            f"clusterer that left nearly every image unassigned)."
        )
    batch_size = min(config.batch_size, n_local)
    # A last batch of one image is skipped (see train_one_epoch): it is no step.
    full, rest = divmod(n_local, batch_size)
    steps = full + (rest >= 2)
    state = TrainState(network, config, steps, generator)
    saved = distributed.run_on_main(lambda: checkpoints and checkpoints.load(stage))
    if saved is not None:
        state.load_state_dict(saved)
    weights = targets.sampling_weights() if config.balanced_sampling else None
    reporter = reporter or Reporter()
    first = state.epoch + 1
    if first > 1:
        reporter.say(f"{stage}: resumed after epoch {state.epoch} of {config.epochs}")
    progress = reporter.progress(
        stage, total=config.epochs * steps, unit="step", initial=state.epoch * steps
    )
    with progress:
        for epoch in range(first, config.epochs + 1):
            order, augmenter = _epoch_plan(targets.indices, weights, generator)
            record = train_one_epoch(
                model,
                state,
                source,
                targets,
                order=order,
                batch_size=batch_size,
                config=config,
                augmenter=augmenter,
                progress=progress,
            )
            if not math.isfinite(record["loss"]):
                raise FloatingPointError(
                    f"The training loss of stage {stage!r} became {record['loss']} at "
                    f"epoch {epoch}; try a lower learning_rate."
                )
            state.history.append({"stage": stage, "epoch": epoch, **record})
            state.epoch = epoch
            progress.note(
                f"epoch {epoch}/{config.epochs}: loss {record['loss']:.4f}, "
                f"{targets.accuracy_of} accuracy {record['accuracy']:.3f}"
            )
            if checkpoints is not None:
                checkpoints.save(stage, state.state_dict())
    if first <= config.epochs:
        ran = config.epochs - first + 1
        reporter.say(f"{stage}: {ran} epoch{'s' * (ran > 1)} in {progress.seconds:.1f}s")
    distributed.share_buffers(network)
    network.eval()
    return state.history


def train_one_epoch(
    model: nn.Module,
    state: TrainState,
    source,
    targets: Targets,
    *,
    order: np.ndarray,
    batch_size: int,
    config: TrainConfig,
    augmenter: torch.Generator,
    progress,
) -> dict:
    """One pass over ``order``; returns the epoch's mean loss, accuracy and seconds.

    The loss and the correct predictions are summed on the device and read
    once, at the end, so that no step waits for the device. Every rank
    returns the same numbers: sums over all ranks' images, and the mean time.
    """
    start = time.perf_counter()
    device = config.device
    # float64 where the device has it (not Apple's MPS), so long epochs sum exactly enough.
    wide = torch.float64 if device.type in ("cpu", "cuda") else torch.float32
    loss_sum = torch.zeros((), dtype=wide, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    for indices, images in source.iter_batches(batch_size, order, device):
        if len(indices) < 2:  # batch norm needs two samples
            continue
        images = augment(images, config.augmentation, augmenter)
        inputs, batch_targets = targets.batch(indices, images, augmenter)
        inputs = inputs.contiguous(memory_format=CHANNELS_LAST)
        with autocast(device, config.autocast_dtype):
            logits = model(inputs)
        loss = targets.loss(logits.float(), batch_targets)
        state.step(loss)
        loss_sum += loss.detach() * len(batch_targets)
        correct += targets.n_correct(logits.detach(), batch_targets)
        seen += len(batch_targets)
        progress.update()
    seconds = time.perf_counter() - start
    loss_sum, correct, seen, seconds = distributed.sum_over_ranks(
        [loss_sum.item(), correct.item(), seen, seconds]
    )
    return {
        "loss": loss_sum / max(seen, 1),
        "accuracy": correct / max(seen, 1),
        "seconds": seconds / distributed.world_size(),
    }


def _epoch_plan(indices: np.ndarray, weights, generator: torch.Generator):
    """This rank's image order for one epoch, and the generator that augments them."""
    order = _epoch_order(indices, weights, generator)
    if not distributed.active():
        return order, generator
    # Drawn from the shared generator, so that the ranks' orders stay in step
    # and a resumed epoch augments as the first run did.
    seed = int(torch.randint(2**62, (1,), generator=generator))
    augmenter = torch.Generator().manual_seed(seed + distributed.rank())
    return distributed.shard(order), augmenter


@float32_part("inference")
def infer(
    module: nn.Module,
    source,
    *,
    batch_size: int,
    device: torch.device,
    shard: bool = False,
    out_file=None,
    reporter: Reporter | None = None,
) -> np.ndarray | None:
    """Outputs of ``module`` on every image of ``source``, as float32 (n, d).

    With ``shard=True`` inside a process group, each rank computes a block of
    the images and rank 0 gets all the outputs, in memory; the other ranks get
    None. All ranks must then call it together, so ``transform`` (which a
    script may call on one rank only) does not shard. Otherwise, with
    ``out_file``, the outputs are written batch by batch to that ``.npy`` file
    and returned memory-mapped, so that they need not fit in memory.

    The output array is allocated once, when the first batch tells its width.
    On a GPU each batch's outputs are copied to pinned memory without waiting,
    and written to the array only after the next batch has been queued, so
    that the GPU computes while the host reads and converts images.

    A ``reporter`` shows the progress over this rank's images as the stage
    ``"embedding"``, and its time.
    """
    module.to(device, memory_format=CHANNELS_LAST).eval()
    source = source.on_device(device)
    n = len(source)
    shard = shard and distributed.active()
    rows = distributed.block(n) if shard else np.arange(n)
    # A rank with no block (fewer images than ranks) still runs one image to
    # learn the output width the gather needs.
    order = rows if len(rows) else np.arange(1)
    to_disk = out_file is not None and not shard
    out = None
    pending: deque = deque()
    lag = 1 if device.type == "cuda" else 0  # batches whose copy to memory waits
    reporter = reporter or Reporter()
    progress = reporter.progress("embedding", total=len(order), unit="image")
    with torch.inference_mode(), progress:
        for indices, images in source.iter_batches(batch_size, order, device):
            images = images.contiguous(memory_format=CHANNELS_LAST)
            outputs = module(images).flatten(1)
            if out is None:
                shape = (len(order), outputs.shape[1])
                out = (
                    np.lib.format.open_memmap(out_file, "w+", np.float32, shape)
                    if to_disk
                    else np.empty(shape, dtype=np.float32)
                )
            pending.append((indices - order[0], *_start_copy(outputs)))
            while len(pending) > lag:
                _finish_copy(out, *pending.popleft())
            progress.update(len(indices))
        while pending:
            _finish_copy(out, *pending.popleft())
    reporter.say(f"embedding: {n} images in {progress.seconds:.1f}s")
    if to_disk:
        out.flush()
        return out
    local = out[: len(rows)]
    return distributed.gather_blocks(local, n) if shard else local


def _start_copy(outputs: torch.Tensor):
    """``outputs`` as float32 on the host, and the event after which they are there.

    On the CPU they are there at once (the event is None); from a GPU the copy
    goes to pinned memory without waiting for it.
    """
    outputs = outputs.float()
    if outputs.device.type != "cuda":
        return outputs, None
    host = torch.empty(outputs.shape, dtype=torch.float32, pin_memory=True)
    host.copy_(outputs, non_blocking=True)
    event = torch.cuda.Event()
    event.record()
    return host, event


def _finish_copy(out: np.ndarray, positions: np.ndarray, host: torch.Tensor, event) -> None:
    if event is not None:
        event.synchronize()
    out[positions] = host.numpy()


def augment(images: torch.Tensor, level: str, generator: torch.Generator) -> torch.Tensor:
    """Random crops, flips and (``"strong"``) brightness/contrast, on the whole batch.

    ``"light"``: shifts of up to 1/8 of the image and horizontal flips.
    ``"strong"``: random resized crops keeping 50-100% of the area (aspect
    ratio 3/4 to 4/3), flips, and brightness and contrast changes of up to 40%.
    Crops are one ``grid_sample`` for the whole batch.
    """
    if level == "none":
        return images
    n, _, height, width = images.shape
    draws = to_device(torch.rand((n, 6), generator=generator), images.device)
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
    grid = _crop_grid(scale_x * flip, scale_y, shift_x, shift_y, height, width)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if level == "strong":
        jitter = to_device(torch.rand((n, 2), generator=generator), images.device)
        contrast = (0.6 + 0.8 * jitter[:, 0]).view(-1, 1, 1, 1)
        brightness = (0.8 * jitter[:, 1] - 0.4).view(-1, 1, 1, 1)
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        # (out - mean) * contrast + mean + brightness * mean, in one pass over the pixels.
        out = torch.addcmul(mean * (1 + brightness - contrast), out, contrast).clamp_(0.0, 1.0)
    return out


def _crop_grid(scale_x, scale_y, shift_x, shift_y, height: int, width: int) -> torch.Tensor:
    """``grid_sample``'s (N, H, W, 2) grid of per-image axis-aligned crops.

    What ``F.affine_grid`` gives (``align_corners=False``) for the matrices
    ``[[scale_x, 0, shift_x], [0, scale_y, shift_y]]``. The crops scale and
    shift each axis alone, so the grid is one row of x and one column of y per
    image broadcast, instead of affine_grid's matrix product over every pixel
    (ten times slower on a CPU at 96x96).
    """
    device = scale_x.device
    # Pixel centres in [-1, 1].
    xs = (torch.arange(width, dtype=torch.float32, device=device) * 2 + 1) / width - 1
    ys = (torch.arange(height, dtype=torch.float32, device=device) * 2 + 1) / height - 1
    grid_x = scale_x[:, None] * xs + shift_x[:, None]
    grid_y = scale_y[:, None] * ys + shift_y[:, None]
    return torch.stack(torch.broadcast_tensors(grid_x[:, None, :], grid_y[:, :, None]), dim=-1)


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


def _epoch_order(usable: np.ndarray, weights, generator: torch.Generator) -> np.ndarray:
    """Sample indices for one epoch: a shuffle, or a class-balanced draw."""
    if weights is None:
        positions = torch.randperm(len(usable), generator=generator)
    else:
        positions = torch.multinomial(weights, len(usable), replacement=True, generator=generator)
    return usable[positions.numpy()]
