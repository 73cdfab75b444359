"""What ``fit`` needs from ``torch.distributed``: ranks, broadcasts and gathers.

``fit`` runs distributed when the caller has initialised a process group of
two or more processes (``torch.distributed.init_process_group`` under
``torchrun``); the package never initialises or destroys one itself, since the
group's backend, timeout and GPU binding belong to the caller's script. Without
a group every function here is the identity, so single-process fits are
unchanged.

Tensors travel on the device the backend needs: the current CUDA device for
NCCL, the CPU otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.distributed as dist


def active() -> bool:
    """Whether ``fit`` runs as one rank of several."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0, or the only process: the one that clusters, prints and writes files."""
    return rank() == 0


def cuda_device() -> torch.device:
    """The GPU of this rank: the current CUDA device, set by the caller's script."""
    return torch.device("cuda", torch.cuda.current_device())


def _device() -> torch.device:
    return cuda_device() if dist.get_backend() == "nccl" else torch.device("cpu")


def wrap(network: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``network`` in ``DistributedDataParallel`` inside a process group, else itself."""
    if not active():
        return network
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(network, device_ids=ids)


def run_on_main(function):
    """``function()`` run on rank 0 alone, its result on every rank.

    An exception raised there is raised on every rank, so that no rank waits
    for ever for a result that will not come.
    """
    if not active():
        return function()
    result, error = None, None
    if is_main():
        try:
            result = function()
        except Exception as exc:  # handed to every rank, then raised
            error = exc
    result, error = broadcast((result, error))
    if error is not None:
        raise error
    return result


def barrier() -> None:
    """Wait until every rank is here (nothing to wait for outside a process group)."""
    if active():
        dist.barrier()


def broadcast(obj):
    """Rank 0's ``obj`` (any picklable object) on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=_device())
    return box[0]


def share_buffers(module: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (batch-norm statistics), in place.

    ``DistributedDataParallel`` copies them from rank 0 before each forward
    pass, so after the last one each rank holds its own update.
    """
    if not active():
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def shard(order: np.ndarray) -> np.ndarray:
    """This rank's share of ``order``, the same length on every rank.

    ``order`` is padded by repeating its start (as ``DistributedSampler``
    does) so that every rank runs the same number of equal batches: ranks that
    ran a different number of steps would wait for each other for ever.
    """
    if not active():
        return order
    size = math.ceil(len(order) / world_size())
    padded = np.resize(order, size * world_size())
    return padded[rank() :: world_size()]


def block(n: int) -> np.ndarray:
    """This rank's contiguous block of ``range(n)``, for :func:`gather_blocks`."""
    size = math.ceil(n / world_size())
    return np.arange(rank() * size, min((rank() + 1) * size, n))


def gather_blocks(local: np.ndarray, n: int) -> np.ndarray | None:
    """The rows of every rank's :func:`block`, in order, on rank 0; None on the others.

    Only rank 0 clusters them, so only it holds them all: the others would
    keep a copy of every image's features for nothing.
    """
    if not active():
        return local
    size = math.ceil(n / world_size())
    padded = torch.zeros((size, *local.shape[1:]), dtype=torch.from_numpy(local).dtype)
    padded[: len(local)] = torch.from_numpy(local)
    padded = padded.to(_device())
    if not is_main():
        dist.gather(padded, None, dst=0)
        return None
    gathered = padded.new_empty((size * world_size(), *local.shape[1:]))
    dist.gather(padded, list(gathered.split(size)), dst=0)
    return gathered[:n].cpu().numpy()


def sum_over_ranks(values: list[float]) -> list[float]:
    """Element-wise sums of ``values`` over the ranks (the same on every rank)."""
    if not active():
        return values
    total = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(total)
    return total.tolist()
