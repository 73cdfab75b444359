"""Checkpoints that let an interrupted ``fit`` resume where it stopped.

A checkpoint folder holds one file per stage (``rotnet.pt``, ``clustering.pt``,
``clusterfit.pt``, ...), rewritten after every epoch. Each file is written to
a temporary name and renamed into place, so a fit killed at any moment leaves
either the previous or the new checkpoint, never half of one. Files are read
with ``torch.load(weights_only=True)``, which cannot run code, and carry a
fingerprint of the data and parameters they belong to and a checksum of their
content: a checkpoint from another fit, or a damaged one, is refused.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import tempfile
import warnings
from numbers import Integral
from pathlib import Path

import numpy as np
import torch

FORMAT = 1
# Parameters that do not change what a fit computes (on the CPU), and the
# device, so that a fit checkpointed on a GPU may resume on a CPU and back
# (when "auto" chose the same network on both: the network it chose is part of
# the fingerprint, and precision="auto" follows the device it resumes on).
_IGNORED_PARAMS = (
    "checkpoint_dir",
    "device",
    "verbose",
    "n_jobs",
    "feature_layer",
    "feature_stages",
    "num_workers",
    "features_dir",
)


def fingerprint(params: dict, source, labels: np.ndarray | None) -> str:
    """A digest of the parameters, the images and the labels of a fit.

    ``source`` is an image source (see ``_sources``): arrays are hashed one image
    at a time; image files by their paths, sizes and modification times.
    ``labels`` are the class ids a supervised extractor learns (None for the
    other extractors, which never read ``y``). Every parameter must be one
    :func:`unfingerprintable` accepts.
    """
    digest = hashlib.sha256()
    kept = {
        name: _describe(_built(value, params) if name == "architecture" else value, name)
        for name, value in sorted(params.items())
        if name not in _IGNORED_PARAMS
    }
    digest.update(json.dumps(kept, sort_keys=True).encode())
    source.update_digest(digest)
    if labels is not None:
        digest.update(np.ascontiguousarray(labels, dtype=np.int64).data)
    return digest.hexdigest()


def unfingerprintable(params: dict) -> str | None:
    """The first parameter (``clusterer.init``, say) no fingerprint can tell apart, or None.

    A plain function or lambda is known only by its name, which another one can
    share, so a checkpoint written by a fit with one could resume a fit with the
    other. Modules, methods of modules (``network_.features``) and
    ``architecture`` factories are told apart by their weights instead.
    """
    try:
        for name, value in params.items():
            if name != "architecture" and name not in _IGNORED_PARAMS:
                _describe(value, name)
    except _Unfingerprintable as exc:
        return str(exc)
    return None


class _Unfingerprintable(Exception):
    """Raised with the name of a parameter that only its name could describe."""


def _built(architecture, params: dict):
    """An ``architecture`` factory as the network it builds from a fixed seed.

    It is called as ``fit`` calls it: with ``n_clusters``, or with the sum of a
    list of them (the outputs of all the heads together).
    """
    if isinstance(architecture, str):
        return architecture
    n_clusters = params["n_clusters"]
    n_outputs = n_clusters if isinstance(n_clusters, Integral) else sum(n_clusters)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)  # the CPU's alone: the GPUs' are not forked
        return architecture(n_outputs)


def _describe(value, name: str):
    """``value`` as JSON that differs wherever a fit with it may differ."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (tuple, list)):
        return [_describe(v, name) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
        return ["ndarray", str(value.dtype), value.shape, _bytes_digest([value.tobytes()])]
    if isinstance(value, np.random.RandomState):
        # By its state, not by repr (an address): the same seed resumes in any process.
        _, keys, position, has_gauss, gauss = value.get_state(legacy=True)
        return ["RandomState", _bytes_digest([keys.tobytes()]), position, has_gauss, gauss]
    if isinstance(value, torch.nn.Module):
        return ["module", _module_digest(value)]
    if inspect.ismethod(value) and isinstance(value.__self__, torch.nn.Module):
        return ["method", value.__name__, _module_digest(value.__self__)]
    if hasattr(value, "get_params"):
        params = value.get_params(deep=False)
        return [_class_name(value), {k: _describe(v, f"{name}.{k}") for k, v in params.items()}]
    if callable(value):
        raise _Unfingerprintable(name)
    return repr(value)


def _module_digest(module: torch.nn.Module) -> str:
    """A digest of a module's class, layers (its repr) and weights."""
    parts = [_class_name(module).encode(), repr(module).encode()]
    for key, tensor in module.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        parts += [f"{key} {tensor.dtype} {tuple(tensor.shape)}".encode()]
        parts += [flat.view(torch.uint8).numpy().tobytes()]
    return _bytes_digest(parts)


def _bytes_digest(parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def _class_name(value) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def atomic_save(obj, path) -> None:
    """``torch.save`` to ``path`` through a temporary file renamed into place.

    A process killed at any moment leaves either the old file or the new one,
    never half of one, and no temporary file behind after an error.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(obj, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Checkpoints:
    """Per-stage checkpoints of one fit, in ``folder``.

    Parameters
    ----------
    folder : str or path
        Created if missing.
    fingerprint : str
        Digest of the fit's data and parameters (see :func:`fingerprint`).
    architecture : str
        The network built, kept in the clear so that a refusal can say when it
        alone differs (``architecture="auto"`` chooses by device).
    """

    def __init__(self, folder, fingerprint: str, architecture: str = ""):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint
        self.architecture = architecture

    def save(self, stage: str, state: dict) -> None:
        """Write ``state`` (tensors, numbers, strings, lists, dicts) atomically."""
        buffer = io.BytesIO()
        torch.save(state, buffer)
        payload = buffer.getvalue()
        record = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "architecture": self.architecture,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8),
        }
        atomic_save(record, self.folder / f"{stage}.pt")

    def load(self, stage: str) -> dict | None:
        """The last state saved for ``stage``, or None when there is none."""
        path = self.folder / f"{stage}.pt"
        if not path.exists():
            return None
        try:
            with warnings.catch_warnings():
                # torch warns about a file that is no archive before failing on it.
                warnings.simplefilter("ignore", UserWarning)
                record = torch.load(path, map_location="cpu", weights_only=True)
            payload = record["payload"].numpy().tobytes()
            intact = hashlib.sha256(payload).hexdigest() == record["sha256"]
        except (OSError, MemoryError):
            raise  # no permission, a folder, no memory...: the file itself may be intact
        except Exception as exc:
            if isinstance(exc, RuntimeError) and "allocate memory" in str(exc):
                raise MemoryError(str(exc)) from exc  # torch's words for a failed allocation
            raise ValueError(
                f"The checkpoint {path} is damaged and cannot be read ({type(exc).__name__})."
            ) from None
        if not intact:
            raise ValueError(f"The checkpoint {path} is damaged: its checksum does not match.")
        built = record.get("architecture", self.architecture)
        if record["fingerprint"] != self.fingerprint and built != self.architecture:
            raise ValueError(
                f"The checkpoint {path} was written by a fit that built "
                f"architecture={built!r}; this one builds {self.architecture!r} "
                f"(architecture='auto' chooses by device). Pass architecture={built!r} "
                f"to resume it, or use another checkpoint_dir."
            )
        if record["format"] != FORMAT or record["fingerprint"] != self.fingerprint:
            raise ValueError(
                f"The checkpoint {path} belongs to a fit with other data or parameters; "
                f"use another checkpoint_dir, or delete this one to start afresh."
            )
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
