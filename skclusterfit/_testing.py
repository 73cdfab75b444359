"""The package's private helpers that benchmarks and docs may use.

This is the one module outside the package's own code (and its tests) from
which ``benchmarks/``, ``docs/`` and ``examples/`` may import private names:
they import nothing else from an underscore module of ``skclusterfit``. A
helper renamed or moved in the package is renamed here, where a failing import
says so at once, instead of a study breaking when it next runs. Nothing here
is public API: it may change with any release.
"""

from __future__ import annotations

import contextlib

from . import _clustering, _networks
from ._clustering import _choose, _faiss_kmeans, _sklearn_model
from ._devices import (
    _FLOAT32_PARTS,
    EMULATED_BFLOAT16_SLOWDOWN,
    autocast,
    cpu_model,
    describe_cpu,
    native_bfloat16,
    precision_name,
    resolve_batch,
    resolve_precision,
    to_device,
)
from ._inputs import check_images
from ._networks import build_network
from ._sources import ArrayImages
from ._targets import ClassIds, ClassProbabilities
from ._training import augment, infer, make_config, train
from .metrics._layers import at_layer, clusters_and_confidence
from .metrics._probes import probe_label
from .neighbors._index import duplicate_groups, searcher, self_neighbours, unit_rows

__all__ = [
    "ArrayImages",
    "ClassIds",
    "ClassProbabilities",
    "EMULATED_BFLOAT16_SLOWDOWN",
    "STEM_SIDE",
    "_choose",
    "_faiss_kmeans",
    "_sklearn_model",
    "at_layer",
    "augment",
    "autocast",
    "build_network",
    "check_images",
    "clusters_and_confidence",
    "cpu_model",
    "describe_cpu",
    "duplicate_groups",
    "float32_parts",
    "infer",
    "make_config",
    "native_bfloat16",
    "observing_clustering",
    "precision_name",
    "probe_label",
    "resolve_batch",
    "resolve_precision",
    "searcher",
    "self_neighbours",
    "stem_side",
    "to_device",
    "train",
    "unit_rows",
]

FLOAT32_PARTS = ("inference",)
# The side the default stem brings large images to (fits outside ``stem_side``).
STEM_SIDE = _networks.STEM_SIDE


@contextlib.contextmanager
def float32_parts(*parts: str):
    """Run ``parts`` of the fits inside the block with CPU autocast switched off.

    Under an enclosing ``torch.autocast("cpu", torch.bfloat16)``, everything a
    fit computes runs in bfloat16 where autocast reaches; ``"inference"``
    (every forward pass outside training: in ``fit``, N_pre's embeddings
    before clustering) named here runs in float32 instead, to find which part
    costs accuracy. (The batched augmentation has no operation autocast
    lowers: it runs in float32 under autocast too.) Outside such a block
    nothing changes.
    """
    unknown = set(parts) - set(FLOAT32_PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; known: {FLOAT32_PARTS}")
    token = _FLOAT32_PARTS.set(_FLOAT32_PARTS.get() | frozenset(parts))
    try:
        yield
    finally:
        _FLOAT32_PARTS.reset(token)


@contextlib.contextmanager
def observing_clustering(observer):
    """Run every fit's clustering inside the block through ``observer``.

    The clustering stage calls ``observer(cluster, *args, **kwargs)`` instead
    of ``cluster(*args, **kwargs)``; ``observer`` must make that call and
    return its result, and may measure around it (``perf_memory_files.py``
    reads the clustering's own peak memory so). Outside the block nothing
    changes.
    """
    token = _clustering.OBSERVER.set(observer)
    try:
        yield
    finally:
        _clustering.OBSERVER.reset(token)


@contextlib.contextmanager
def stem_side(side: int | None):
    """Build every stem inside the block to bring images to about ``side`` pixels.

    ``None`` keeps the default (``STEM_SIDE``). ``bench_large_images.py``
    compares stem sides so. Not thread-safe: it changes a module constant for
    the time of the block.
    """
    _networks.STEM_SIDE = side or STEM_SIDE
    try:
        yield
    finally:
        _networks.STEM_SIDE = STEM_SIDE
