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
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

FORMAT = 1
# Parameters that do not change what a fit computes (on the CPU), and the
# device, so that a fit checkpointed on a GPU may resume on a CPU and back.
_IGNORED_PARAMS = (
    "checkpoint_dir",
    "device",
    "verbose",
    "n_jobs",
    "feature_layer",
    "num_workers",
    "features_dir",
)


def fingerprint(params: dict, source, y) -> str:
    """A digest of the parameters, the images and the labels of a fit.

    ``source`` is an image source (see ``_inputs``): arrays are hashed one image
    at a time; image files by their paths, sizes and modification times.
    """
    digest = hashlib.sha256()
    kept = {k: _describe(v) for k, v in sorted(params.items()) if k not in _IGNORED_PARAMS}
    digest.update(json.dumps(kept, sort_keys=True).encode())
    source.update_digest(digest)
    if y is not None:
        digest.update(np.ascontiguousarray(np.asarray(y)).data)
    return digest.hexdigest()


def _describe(value):
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (tuple, list)):
        return [_describe(v) for v in value]
    if isinstance(value, torch.nn.Module):
        weights = hashlib.sha256()
        for name, tensor in value.state_dict().items():
            weights.update(name.encode())
            weights.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
        return [type(value).__qualname__, weights.hexdigest()]
    if hasattr(value, "get_params"):
        return [type(value).__qualname__, {k: _describe(v) for k, v in value.get_params().items()}]
    return repr(value) if not callable(value) else getattr(value, "__qualname__", repr(value))


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
    """

    def __init__(self, folder, fingerprint: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint

    def save(self, stage: str, state: dict) -> None:
        """Write ``state`` (tensors, numbers, strings, lists, dicts) atomically."""
        buffer = io.BytesIO()
        torch.save(state, buffer)
        payload = buffer.getvalue()
        record = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
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
            record = torch.load(path, map_location="cpu", weights_only=True)
            payload = record["payload"].numpy().tobytes()
            intact = hashlib.sha256(payload).hexdigest() == record["sha256"]
        except Exception as exc:
            raise ValueError(
                f"The checkpoint {path} is damaged and cannot be read ({exc})."
            ) from None
        if not intact:
            raise ValueError(f"The checkpoint {path} is damaged: its checksum does not match.")
        if record["format"] != FORMAT or record["fingerprint"] != self.fingerprint:
            raise ValueError(
                f"The checkpoint {path} belongs to a fit with other data or parameters; "
                f"use another checkpoint_dir, or delete this one to start afresh."
            )
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
