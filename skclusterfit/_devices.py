"""Where and how the networks compute: device, numeric precision, threads and seeds.

Everything the package needs to know about the hardware is decided here, once
per ``fit`` or ``transform``, and handed to the stages as plain values.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import platform

import torch

from . import _distributed as distributed
from ._compat import warn

PRECISIONS = ("auto", "float32", "bfloat16")


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
    if resolved.type == "meta":
        raise ValueError("device='meta' holds no values, so nothing can be computed on it.")
    try:
        torch.empty(1, device=resolved)  # a backend torch knows but this build or machine lacks
    except RuntimeError as exc:
        reason = str(exc).split(". ")[0]  # torch goes on about how it was built
        raise ValueError(f"device={device!r} cannot be used here: {reason}.") from None
    return resolved


def _rank_device(device: torch.device) -> torch.device:
    """A GPU without an index means this rank's own GPU inside a process group."""
    if device.type == "cuda" and device.index is None and distributed.active():
        return distributed.cuda_device()
    return device


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of training steps, or None for plain float32.

    ``"auto"`` is bfloat16 where the hardware computes it natively (CUDA
    devices of compute capability 8.0 or more; CPUs with AMX or AVX512-BF16)
    and float32 elsewhere.
    """
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    return torch.bfloat16 if native_bfloat16(device) else None


def precision_name(precision: str, device: torch.device) -> str:
    """``"float32"`` or ``"bfloat16"``: what ``precision`` trains in on ``device``."""
    dtype = resolve_precision(precision, device)
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` has bfloat16 arithmetic in hardware, and torch's kernels use it.

    On the CPU both must hold: AMX or AVX512-BF16 in the hardware, and kernels
    that reach them. ``ATEN_CPU_CAPABILITY=avx2`` (torch's own kernels) or
    ``ONEDNN_MAX_CPU_ISA=AVX2`` (oneDNN's convolutions and matrix products)
    restrict a CPU to kernels that emulate bfloat16, slowly.
    """
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        return _cpu_bfloat16_hardware() is not None and _cpu_kernels_reach_bfloat16()
    return False


def _cpu_bfloat16_hardware() -> str | None:
    """ "AMX" or "AVX512-BF16", the CPU's bfloat16 instructions, or None."""
    # torch's own queries of the CPU's instruction sets (private, so looked up
    # defensively: an older torch without them gets float32).
    for name, query in (
        ("AMX", "_is_amx_tile_supported"),
        ("AVX512-BF16", "_is_avx512_bf16_supported"),
    ):
        if getattr(torch.cpu, query, lambda: False)():
            return name
    return None


def _cpu_kernels_reach_bfloat16() -> bool:
    """Whether neither torch's nor oneDNN's kernels are held below AVX512 by the environment."""
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False
    ceiling = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "ALL"))
    ceiling = ceiling.strip().upper()
    return ceiling in ("", "ALL", "DEFAULT") or any(
        word in ceiling for word in ("BF16", "AMX", "AVX10")
    )


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it (or the platform's processor)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe_cpu() -> str:
    """The CPU's kernels and bfloat16, as ``verbose=1`` and the benchmarks' records name them.

    For example ``"AVX512 kernels, bfloat16 native (AMX)"`` or ``"AVX2
    kernels, bfloat16 emulated"``.
    """
    hardware = _cpu_bfloat16_hardware()
    kernels = f"{torch.backends.cpu.get_cpu_capability()} kernels"
    if hardware is None:
        return f"{kernels}, bfloat16 emulated"
    if not _cpu_kernels_reach_bfloat16():
        return f"{kernels}, bfloat16 emulated ({hardware} left unused by the kernels)"
    return f"{kernels}, bfloat16 native ({hardware})"


def describe_fit(device: torch.device, precision: str) -> str:
    """Where and in what precision a fit trains, the line ``verbose=1`` starts with."""
    if device.type == "cuda":
        where = f"{device} ({torch.cuda.get_device_name(device)})"
    elif device.type == "cpu":
        threads = torch.get_num_threads()
        where = f"cpu ({describe_cpu()}; {threads} torch thread{'s' * (threads != 1)})"
    else:
        where = str(device)
    trains = precision_name(precision, device)
    return f"fitting on {where}; training in {trains} (precision={precision!r})"


# How much slower the package's training stage ran in bfloat16 than in float32 on a
# CPU that emulates it (benchmarks/results/perf_cpu.json, the "avx2" mode); a test
# checks this figure against that record.
EMULATED_BFLOAT16_SLOWDOWN = 9.2


def warn_of_emulated_bfloat16(precision: str, device: torch.device) -> None:
    """Warn where ``precision="bfloat16"`` was asked for on a CPU that only emulates it."""
    if precision != "bfloat16" or device.type != "cpu" or native_bfloat16(device):
        return
    warn(
        f"precision='bfloat16' on a CPU without bfloat16 arithmetic ({describe_cpu()}): "
        f"it is emulated, and training ran {EMULATED_BFLOAT16_SLOWDOWN:.1f} times slower "
        f"in bfloat16 than in float32 on such a CPU. precision='auto' trains in float32 "
        f"here."
    )


# batch_size="auto": BASE_BATCH images a step, for which learning_rate is given;
# on a CUDA GPU up to MAX_GPU_BATCH, as many as fit in GPU_PIXELS_PER_STEP.
BASE_BATCH = 128
MAX_GPU_BATCH = 256
GPU_PIXELS_PER_STEP = MAX_GPU_BATCH * 32 * 32


def resolve_batch(
    batch_size, learning_rate: float, device: torch.device, image_shape: tuple[int, int, int]
) -> tuple[int, float]:
    """The images per step and the peak learning rate that a fit trains with.

    An int ``batch_size`` is taken with ``learning_rate`` as given. ``"auto"``
    is 128 images a step off CUDA. On a CUDA GPU, where a step of 128 small
    images leaves the device waiting on the host, it is 256 for images of at
    most 32x32 pixels (``image_shape`` is (C, H, W)), and 128 for larger ones.
    The learning rate is then ``learning_rate`` times the batch over 128: the
    linear scaling rule (Goyal et al., 2017). ``benchmarks/bench_batch_size.py``
    measured the larger batches on the CPU: 256 images a step kept every probe
    within the seed spread of 128; 512 (at a rate of 0.2) fell below it on 7
    of 12 probes.
    """
    if batch_size != "auto":
        return int(batch_size), learning_rate
    batch = BASE_BATCH
    if device.type == "cuda":
        _, height, width = image_shape
        while batch < MAX_GPU_BATCH and 2 * batch * height * width <= GPU_PIXELS_PER_STEP:
            batch *= 2
    return batch, learning_rate * batch / BASE_BATCH


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``, or nothing for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


# Parts of a fit that run with CPU autocast switched off inside the block of
# ``_testing.float32_parts`` (a study of where bfloat16 costs accuracy); empty
# otherwise, so that a fit never looks at it.
_FLOAT32_PARTS: contextvars.ContextVar[frozenset] = contextvars.ContextVar(
    "float32_parts", default=frozenset()
)


def float32_part(part: str):
    """Mark a function as ``part`` of a fit, which ``_testing.float32_parts`` can run
    with CPU autocast switched off under an enclosing ``torch.autocast``."""

    def mark(function):
        @functools.wraps(function)
        def run(*args, **kwargs):
            if part not in _FLOAT32_PARTS.get():
                return function(*args, **kwargs)
            with torch.autocast("cpu", enabled=False):
                return function(*args, **kwargs)

        return run

    return mark


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device``; copies to a GPU go from pinned memory, without waiting."""
    if device.type != "cuda" or tensor.is_cuda:  # already there: DeviceImages' batches
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Seed torch's global generators inside the block and restore them after.

    Layer initialisation and dropout draw from the global generators; forking
    them keeps fits reproducible without changing the caller's random state.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        # Only the generators forked above: torch.manual_seed would also reseed
        # every other GPU's, which fork_rng does not restore.
        torch.default_generator.manual_seed(seed)
        if devices:
            torch.cuda.default_generators[_index(device)].manual_seed(seed)
        yield


def _index(device: torch.device) -> int:
    return torch.cuda.current_device() if device.index is None else device.index


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
