"""Saving fitted transformers in a format that cannot run code when loaded.

A model file is one ``torch.save`` archive holding only tensors, numbers and
strings: the networks' weights, the fitted arrays, and the parameters and other
fitted attributes as JSON, with the package version. :func:`load` reads it with
``torch.load(weights_only=True)``, which refuses anything else (a crafted pickle
included), and rebuilds the networks from their parameters.

Only models whose ``extractor`` and ``architecture`` are named by strings can be
saved this way, since a user's module or function is code; pickle or joblib
those instead.
"""

from __future__ import annotations

import copy
import errno
import itertools
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from . import _version
from ._checkpoints import atomic_save, decode, encode
from ._compat import warn
from ._extractors import TRAINED_EXTRACTORS, pretrained
from ._networks import Features, build_network

FORMAT = "skclusterfit-model"
FORMAT_VERSION = 1
# The first byte of a pickle of protocol 2 or more (pickle, joblib, old torch.save).
_PICKLE_START = b"\x80"
_JSON_ATTRIBUTES = (
    "image_shape_",
    "input_range_",
    "n_features_in_",
    "n_clusters_",
    "n_clusters_all_",
    "clusterer_",
    "architecture_",
    "history_",
    "_extractor_n_features",
)
# Fitted attributes that JSON turns into lists and load() turns back into tuples.
_TUPLE_ATTRIBUTES = ("image_shape_", "input_range_")


def save(estimator, path) -> None:
    """Write the fitted ``estimator`` to ``path``."""
    check_is_fitted(estimator)
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "save() needs a file name, not a folder", str(path))
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "No folder to save the model in", str(path.parent))
    params = estimator.get_params(deep=False)
    for name in ("extractor", "architecture"):
        if not isinstance(params[name], str):
            raise TypeError(
                f"save() stores models whose {name} is a string; this one's is "
                f"{type(params[name]).__name__}, which is code. Use pickle or joblib."
            )
    fitted = {name: getattr(estimator, name) for name in _JSON_ATTRIBUTES}
    fitted["clusterer_"] = encode("clusterer_", fitted["clusterer_"])
    fitted["clusterer_all_"] = [encode("clusterer_", c) for c in estimator.clusterer_all_]
    if hasattr(estimator, "feature_names_in_"):
        fitted["feature_names_in_"] = estimator.feature_names_in_.tolist()
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": _version.__version__,
        "params": json.dumps({k: encode(k, v) for k, v in params.items()}),
        "fitted": json.dumps(fitted),
        "labels_": torch.from_numpy(estimator.labels_),
        "cluster_centers_": torch.from_numpy(np.ascontiguousarray(estimator.cluster_centers_)),
        # The clusterings after the first, for a list of n_clusters.
        "labels_more": [torch.from_numpy(labels) for labels in estimator.labels_all_[1:]],
        "cluster_centers_more": [
            torch.from_numpy(np.ascontiguousarray(centers))
            for centers in estimator.cluster_centers_all_[1:]
        ],
        "network": _cpu_state(estimator.network_),
        "extractor": _cpu_state(estimator.extractor_),
        "extractor_outputs": _extractor_outputs(estimator),
    }
    atomic_save(record, path)


def load(path, estimator_class):
    """Read a model file written by :func:`save` into a new ``estimator_class``.

    Loading never runs code from the file: it holds only tensors, numbers and
    strings, read with ``torch.load(weights_only=True)``. Raises ``ValueError``
    when the file is not a model file, holds anything but plain data, or was
    written by an unknown format version.
    """
    record = _read(path)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{path} is not a skclusterfit model file.")
    if record["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{path} has model format version {record['format_version']}; this "
            f"version of skclusterfit reads version {FORMAT_VERSION}."
        )
    if record["package_version"] != _version.__version__:
        warn(
            f"{path} was saved by skclusterfit {record['package_version']}; loading it "
            f"with {_version.__version__}.",
        )
    params = {k: decode(k, v) for k, v in json.loads(record["params"]).items()}
    estimator = estimator_class(**params)
    fitted = json.loads(record["fitted"])
    for name, value in fitted.items():
        if name == "feature_names_in_":
            value = np.asarray(value, dtype=object)
        elif name == "clusterer_":
            value = decode(name, value)
        elif name == "clusterer_all_":
            value = [decode("clusterer_", clusterer) for clusterer in value]
        elif name in _TUPLE_ATTRIBUTES:
            value = tuple(value)
        setattr(estimator, name, value)
    estimator.labels_ = record["labels_"].numpy()
    estimator.cluster_centers_ = record["cluster_centers_"].numpy()
    estimator.labels_all_ = [estimator.labels_, *(x.numpy() for x in record["labels_more"])]
    estimator.cluster_centers_all_ = [
        estimator.cluster_centers_,
        *(x.numpy() for x in record["cluster_centers_more"]),
    ]

    shape = estimator._chw
    channels = shape[0]
    architecture = estimator.architecture_
    blank = (np.zeros(channels), np.ones(channels))
    with torch.random.fork_rng(devices=[]):  # building a network draws random weights
        estimator.network_ = build_network(architecture, shape, estimator.n_clusters_all_, *blank)
        if params["extractor"] in TRAINED_EXTRACTORS:
            extractor = Features(
                build_network(architecture, shape, record["extractor_outputs"], *blank)
            )
        else:
            extractor = pretrained(params["extractor"], channels)
    estimator.network_.load_state_dict(record["network"])
    extractor.load_state_dict(record["extractor"])
    estimator.network_.eval()
    estimator.extractor_ = extractor.requires_grad_(False).eval()
    return estimator


def _read(path):
    """What ``torch.load(weights_only=True)`` reads from ``path``, or a ValueError saying why not.

    Errors of the operating system (a missing file, a folder, no permission)
    keep their own type and message.
    """
    with open(path, "rb") as stream:
        # A model file is a zip archive, as torch.save writes; a pickle is not
        # handed to torch.load, which would warn and advise unpickling it.
        if not zipfile.is_zipfile(stream):
            stream.seek(0)
            if stream.read(1) == _PICKLE_START:
                raise ValueError(
                    f"{path} is not a skclusterfit model file: it looks like a pickle (as "
                    f"pickle, joblib or an old torch.save write them). Unpickling can run any "
                    f"code: open it with pickle or joblib only if it comes from a trusted source."
                )
            raise ValueError(
                f"{path} is not a skclusterfit model file: model files are zip archives and "
                f"this is not one (another kind of file, or a truncated one)."
            )
        stream.seek(0)
        try:
            return torch.load(stream, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise ValueError(
                f"{path} is not a skclusterfit model file: it holds objects other than "
                f"tensors, numbers and strings, and load() refuses to run the code that "
                f"rebuilding them could run."
            ) from None
        except (RuntimeError, EOFError, KeyError) as exc:
            raise ValueError(
                f"{path} is a zip archive that torch cannot read as a saved file: it is "
                f"damaged, or not a skclusterfit model file ({type(exc).__name__})."
            ) from None


def picklable(state: dict) -> dict:
    """An estimator's ``__getstate__`` with its networks copied to the CPU where they are not.

    So that a pickle of a model fitted on a GPU loads on machines without one.
    """
    for key in ("extractor_", "network_"):
        module = state.get(key)
        if isinstance(module, torch.nn.Module) and any(
            t.device.type != "cpu" for t in itertools.chain(module.parameters(), module.buffers())
        ):
            state[key] = copy.deepcopy(module).to("cpu")
    return state


def _cpu_state(module: torch.nn.Module) -> dict:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def _extractor_outputs(estimator) -> int:
    """Output count of a trained extractor's (unused) head, needed to rebuild it."""
    extractor = estimator.extractor_
    return extractor.network.head.out_features if isinstance(extractor, Features) else 0
