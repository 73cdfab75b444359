"""Features written to disk a chunk at a time, resumable, and read back.

A features folder holds ``features.npy`` (float32, one row per image, written
through a memory map), ``images.csv`` (the position and, for image files, the
path of each row; also ``images.parquet`` when pandas and pyarrow are
installed), ``manifest.json`` (what the features are of) and ``chunks/``, one
empty marker file per finished chunk. A write that was interrupted is resumed
by calling it again: the chunks with a marker are skipped. Under
``torch.distributed`` every rank writes the chunks ``i`` with
``i % world_size == rank``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from . import _distributed as distributed
from ._checkpoints import _module_digest
from ._exports import write_csv
from ._inputs import _streamed_kind, check_images, images_at

FORMAT = 1
MANIFEST = "manifest.json"
FEATURES = "features.npy"
TABLE = "images.csv"


def write_features(estimator, X, folder, *, chunk_size: int = 4096) -> Path:
    """The features of ``X`` by ``estimator.transform``, written to ``folder``."""
    kind = _streamed_kind(X)
    if kind is None and not hasattr(X, "shape"):
        X = np.asarray(X)
    source = check_images(estimator, X, reset=False)  # every file checked before any work
    n = len(source)
    names = [os.fspath(p) for p in X] if kind == "paths" else None
    folder = Path(folder)
    manifest = {
        "format": FORMAT,
        "n_images": n,
        "n_features": int(estimator._n_features_out),
        "chunk_size": chunk_size,
        "images": _images_digest(source, X, kind),
        "model": _module_digest(estimator._output_module()),
    }
    distributed.run_on_main(lambda: _prepare(folder, manifest))
    distributed.barrier()
    done = folder / "chunks"
    n_chunks = -(-n // chunk_size)
    for chunk in range(distributed.rank(), n_chunks, distributed.world_size()):
        marker = done / f"{chunk:06d}"
        if marker.exists():
            continue
        rows = np.arange(chunk * chunk_size, min((chunk + 1) * chunk_size, n))
        block = estimator.transform(images_at(X, rows))
        # Mapped a chunk at a time: the pages written leave the process's
        # memory with the map, so memory holds one chunk whatever n is.
        features = np.load(folder / FEATURES, mmap_mode="r+")
        features[rows[0] : rows[-1] + 1] = block
        features.flush()
        del features
        marker.touch()  # only once the rows are on disk
    distributed.barrier()
    distributed.run_on_main(lambda: _finish(folder, manifest, names, n_chunks))
    return folder


def load_features(folder) -> Bunch:
    """The features and image table of a folder written by :func:`write_features`."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{str(folder)!r} holds no {MANIFEST}: it is not a folder written by write_features."
        ) from None
    if not manifest.get("complete"):
        raise ValueError(
            f"The features in {str(folder)!r} are not all written: call write_features again "
            f"with the same model and images to finish them."
        )
    with open(folder / TABLE, newline="", encoding="utf-8") as stream:
        table = list(csv.DictReader(stream))
    paths = [row["path"] for row in table] if table and "path" in table[0] else None
    features = np.load(folder / FEATURES, mmap_mode="r")
    return Bunch(features=features, paths=paths, manifest=manifest)


def _prepare(folder: Path, manifest: dict) -> None:
    """Create the folder and the features file, or check that they are this write's."""
    found = folder / MANIFEST
    if found.exists():
        before = json.loads(found.read_text())
        before.pop("complete", None)
        if before != manifest:
            differ = sorted(k for k in manifest if before.get(k) != manifest[k])
            raise ValueError(
                f"{str(folder)!r} holds features written for other images, another model or "
                f"other settings ({', '.join(differ)} differ): pass a new folder, or delete it."
            )
        return
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FileExistsError(
            f"{str(folder)!r} exists and is not an empty folder or one write_features wrote; "
            f"pass a new folder."
        )
    (folder / "chunks").mkdir(parents=True, exist_ok=True)
    shape = (manifest["n_images"], manifest["n_features"])
    np.lib.format.open_memmap(folder / FEATURES, "w+", np.float32, shape).flush()
    found.write_text(json.dumps(manifest, indent=2) + "\n")


def _finish(folder: Path, manifest: dict, names, n_chunks: int) -> None:
    """Write the image table and mark the folder complete, once every chunk is there."""
    missing = [c for c in range(n_chunks) if not (folder / "chunks" / f"{c:06d}").exists()]
    if missing:
        raise RuntimeError(f"Chunks {missing[:5]} of {str(folder)!r} were not written.")
    if names is None:
        write_csv(folder / TABLE, ["index"], ([i] for i in range(manifest["n_images"])))
    else:
        write_csv(folder / TABLE, ["index", "path"], enumerate(names))
    try:
        import pandas as pd

        pd.read_csv(folder / TABLE).to_parquet(folder / "images.parquet", index=False)
    except ImportError:  # pandas or pyarrow missing: the CSV alone
        pass
    (folder / MANIFEST).write_text(json.dumps({**manifest, "complete": True}, indent=2) + "\n")


def _images_digest(source, X, kind) -> str:
    """What identifies the images: arrays and files as the stage cache hashes them,
    a Dataset by its type, length and a sample of its images (not every image)."""
    digest = hashlib.sha256()
    if kind == "dataset":
        n = len(X)
        digest.update(f"{type(X).__qualname__} {n} {source.shape}".encode())
        sample = np.unique(np.linspace(0, n - 1, min(n, 8)).astype(np.int64))
        for _, images in source.iter_batches(len(sample), sample):
            digest.update(images.contiguous().numpy().data)
    else:
        source.update_digest(digest)
    return digest.hexdigest()
