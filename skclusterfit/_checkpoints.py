"""The stage cache behind ``checkpoint_dir``: each stage's result, stored under what it depends on.

Every stage of ``fit`` (N_pre's training, its embeddings, the clustering,
N_cf's training) is stored in the folder under a key: a digest of exactly what
its result depends on, the data, the parameters that reach it and its seed,
chained from the key of the stage before it (see :func:`stage_keys`). A fit
that differs from an earlier one only in later stages (``n_clusters``, say)
finds the earlier stages' results and reuses them; an interrupted fit finds
its own stage's last epoch and resumes it. A stage's file is named by its
stage and key (``rotnet-<key>.pt``), so results of many fits share one folder.

A file is written to a temporary name and renamed into place, so a fit killed
at any moment leaves either the previous or the new file, never half of one.
While a fit computes a stage it holds that key's lock file (``fcntl.flock``,
where the system has it, POSIX), so that a second fit of the same key, in
another thread or process, waits and then reuses the result instead of
writing over it. Files are read with ``torch.load(weights_only=True)``, which
cannot run code, and carry their full key and a checksum of their content: a
file of another fit, or a damaged one, is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
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
from sklearn.base import BaseEstimator

from . import _distributed as distributed
from ._devices import resolve_precision

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: fits of one key then compute it twice
    fcntl = None

FORMAT = 2
# Which parameters reach which stage. A stage's key holds its own parameters
# and, through its parent's key, the earlier stages'. The trained extractors'
# training settings reach N_pre; "supervised" also samples by class
# (balanced_sampling) and learns y.
EXTRACT_PARAMS = (
    "extractor",
    "extractor_weights",
    "image_shape",
    "image_size",
    "architecture",
    "extractor_epochs",
    "rotations_per_image",
    "batch_size",
    "learning_rate",
    "lr_schedule",
    "weight_decay",
    "augmentation",
    "precision",
)
CLUSTER_PARAMS = ("n_clusters", "clusterer", "pca_components", "l2_normalize")
FIT_PARAMS = (
    "architecture",
    "max_epochs",
    "batch_size",
    "learning_rate",
    "lr_schedule",
    "weight_decay",
    "augmentation",
    "balanced_sampling",
    "precision",
)
# Parameters in no key: what transform returns, how much is printed, where
# files go, how images are decoded, and where and with how many threads the
# networks compute. The last two change a result's last bits (see the User
# Guide), not what it is, so that a fit stored on a GPU resumes on a CPU.
NO_STAGE_PARAMS = (
    "checkpoint_dir",
    "device",
    "verbose",
    "n_jobs",
    "feature_layer",
    "feature_stages",
    "num_workers",
    "features_dir",
)
STAGES = ("extractor", "embeddings", "clustering", "clusterfit")


def stage_keys(
    params: dict, source, labels: np.ndarray | None, *, pretext_outputs: int, n_outputs: int
) -> dict[str, str]:
    """The key of every stage of a fit: ``{"extractor": ..., "clustering": ..., ...}``.

    ``params`` are the estimator's, with ``architecture`` resolved (the network
    ``"auto"`` chose), ``n_clusters`` as a list of ints and ``precision`` as
    the dtype it resolved to. ``source`` is an image source (see
    ``_sources``): arrays are hashed one image at a time, image files by their
    paths, sizes and modification times. ``labels`` are the class ids a
    supervised extractor learns (None for the others, which never read ``y``).
    An ``architecture`` factory counts by the network it builds for each stage:
    with ``pretext_outputs`` outputs for N_pre, ``n_outputs`` for N_cf. Every
    parameter must be one :func:`unfingerprintable` accepts.
    """
    data = hashlib.sha256()
    source.update_digest(data)
    if labels is not None and params["extractor"] == "supervised":
        data.update(np.ascontiguousarray(labels, dtype=np.int64).data)
    extract = {name: params[name] for name in EXTRACT_PARAMS}
    extract["architecture"] = _built(params["architecture"], pretext_outputs)
    if params["extractor"] == "supervised":
        extract["balanced_sampling"] = params["balanced_sampling"]
    fit = {name: params[name] for name in FIT_PARAMS}
    fit["architecture"] = _built(params["architecture"], n_outputs)
    keys = {"extractor": _key(data.hexdigest(), extract, params["random_state"], 0)}
    keys["embeddings"] = _key(keys["extractor"], {}, None, 0)
    cluster = {name: params[name] for name in CLUSTER_PARAMS}
    keys["clustering"] = _key(keys["extractor"], cluster, params["random_state"], 1)
    keys["clusterfit"] = _key(keys["clustering"], fit, params["random_state"], 2)
    if isinstance(params["extractor"], str):  # the stage that trains it is named after it
        keys[params["extractor"]] = keys["extractor"]
    return keys


def stage_cache(folder, params: dict, source, labels, *, device, pretext_outputs: int):
    """The stored stages of a fit in ``folder``: a :class:`Checkpoints`, or None.

    None without a folder, and on every rank but 0 of a process group (rank 0
    alone reads and writes the cache). ``params`` as for :func:`stage_keys`,
    with ``precision`` as given: it is resolved on ``device`` here.
    """
    if folder is None or not distributed.is_main():
        return None
    params = {**params, "precision": str(resolve_precision(params["precision"], device))}
    keys = stage_keys(
        params, source, labels, pretext_outputs=pretext_outputs, n_outputs=sum(params["n_clusters"])
    )
    return Checkpoints(folder, keys)


def _key(parent: str, parts: dict, random_state, position: int) -> str:
    """A digest of the parent stage's key, this stage's parameters and its seed.

    The seed is the ``position``-th that ``random_state`` draws: it is known by
    ``random_state`` itself (an int, a RandomState's state, or None).
    """
    described = {name: _describe(value, name) for name, value in sorted(parts.items())}
    described["random_state"] = [_describe(random_state, "random_state"), position]
    text = json.dumps([parent, described], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def unfingerprintable(params: dict) -> str | None:
    """The first parameter (``clusterer.init``, say) no fingerprint can tell apart, or None.

    A plain function or lambda is known only by its name, which another one can
    share, so a checkpoint written by a fit with one could resume a fit with the
    other. Modules, methods of modules (``network_.features``) and
    ``architecture`` factories are told apart by their weights instead.
    """
    try:
        for name, value in params.items():
            if name != "architecture" and name not in NO_STAGE_PARAMS:
                _describe(value, name)
    except _Unfingerprintable as exc:
        return str(exc)
    return None


class _Unfingerprintable(Exception):
    """Raised with the name of a parameter that only its name could describe."""


def _built(architecture, n_outputs: int):
    """An ``architecture`` factory as the network it builds for ``n_outputs``, from seed 0."""
    if isinstance(architecture, str):
        return architecture
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


def holding(checkpoints: Checkpoints | None, stage):
    """``checkpoints.lock(stage)``, or nothing without checkpoints or a stored ``stage``."""
    if checkpoints is None or stage not in checkpoints.keys:
        return contextlib.nullcontext()
    return checkpoints.lock(stage)


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
    """The stored stages of one fit, in ``folder``: its stage cache.

    Parameters
    ----------
    folder : str or path
        Created if missing; shared by any number of fits.
    keys : dict
        The key of each stage name (see :func:`stage_keys`).
    """

    def __init__(self, folder, keys: dict[str, str]):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keys = keys

    def _key(self, stage: str) -> str:
        return self.keys[stage]

    def path(self, stage: str) -> Path:
        """The file of ``stage`` for this fit."""
        return self.folder / f"{stage}-{self._key(stage)[:32]}.pt"

    @contextlib.contextmanager
    def lock(self, stage: str):
        """Hold ``stage``'s lock for this fit's key: a fit of the same key waits."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        path = self.folder / f".{self.path(stage).stem}.lock"
        with open(path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def save(self, stage: str, state: dict) -> None:
        """Write ``state`` (tensors, numbers, strings, lists, dicts) atomically."""
        buffer = io.BytesIO()
        torch.save(state, buffer)
        payload = buffer.getvalue()
        record = {
            "format": FORMAT,
            "stage": stage,
            "key": self._key(stage),
            "sha256": hashlib.sha256(payload).hexdigest(),
            "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8),
        }
        atomic_save(record, self.path(stage))

    def load(self, stage: str) -> dict | None:
        """The last state saved for ``stage`` by a fit of this key, or None when there is none."""
        path = self.path(stage)
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
        if (record["format"], record["stage"], record["key"]) != (FORMAT, stage, self._key(stage)):
            raise ValueError(
                f"The checkpoint {path} belongs to a fit with other data or parameters "
                f"(it was renamed or copied there); delete it to start afresh."
            )
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


def encode(name: str, value):
    """A parameter as JSON; scikit-learn clusterers by class and parameters."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (tuple, list)) and all(isinstance(v, Integral) for v in value):
        # n_clusters and image_shape: a list stays a list, a tuple a tuple.
        return {"list" if isinstance(value, list) else "tuple": [int(v) for v in value]}
    if isinstance(value, BaseEstimator) and type(value).__module__.startswith("sklearn."):
        return {
            "sklearn_estimator": f"{type(value).__module__}.{type(value).__qualname__}",
            "params": {k: encode(k, v) for k, v in value.get_params(deep=False).items()},
        }
    raise TypeError(
        f"save() stores plain parameter values; {name}={value!r} is not one. "
        f"Use pickle or joblib for this model."
    )


def decode(name: str, value):
    if isinstance(value, dict) and "tuple" in value:
        return tuple(value["tuple"])
    if isinstance(value, dict) and "list" in value:
        return list(value["list"])
    if isinstance(value, dict) and "sklearn_estimator" in value:
        module_name, _, class_name = value["sklearn_estimator"].rpartition(".")
        if not module_name.startswith("sklearn."):
            raise ValueError(f"{name}: only scikit-learn estimators are rebuilt by load().")
        cls = getattr(importlib.import_module(module_name), class_name)
        if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
            raise ValueError(f"{name}: {value['sklearn_estimator']} is not an estimator.")
        return cls(**{k: decode(k, v) for k, v in value["params"].items()})
    return value
