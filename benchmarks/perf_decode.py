"""Photos from files: images per second of the package's reading path against decode alone.

A fit or transform on image files reads every image once per epoch: open,
decode, convert (grey or RGB), resize to the fitted size, scale to [0, 1] and
batch. For photos much larger than the training size the decode dominates,
and the package asks the JPEG decoder for the smallest of its scales (1/1,
1/2, 1/4, 1/8) that still covers the size it resizes to (PIL's draft mode).

The photos: the two that ship with scikit-learn (``load_sample_images``,
427x640), cut into ``--n-files`` random 384x576 crops (flipped at random) and
written as JPEG files at quality 90. Measured, in images per second, best of
``--repeats`` passes over every file:

- decode alone: PIL's ``Image.open(path).load()``, and torchvision's
  ``decode_jpeg(read_file(path))`` (both libjpeg-turbo), in one process;
- the package's path (``iter_batches`` of the source ``transform`` builds
  from the paths for a model fitted at that size, batches of 256; ``fit``
  builds the same one) at 224x224 colour, 96x96 colour and 96x96 grey, and
  the same path decoding every photo at full size (as before the draft mode);
- with ``num_workers=2`` DataLoader worker processes against PIL decode alone
  in two worker processes.

Target: the package's path at least 0.9 times as fast as decode alone with
the same number of processes (resizing, conversion and batching cost at most
a tenth of the decoding).

Usage::

    python benchmarks/perf_decode.py           # 400 files, 3 passes each
    python benchmarks/perf_decode.py --quick   # 40 files, 1 pass
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import _common as common
import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_sample_images
from torch.utils.data import DataLoader, Dataset
from torchvision.io import decode_jpeg, read_file

from skclusterfit import ClusterFitTransformer
from skclusterfit._testing import check_images

CROP = (384, 576)
# (arm, image size, channels).
TARGETS = (("224x224 colour", 224, 3), ("96x96 colour", 96, 3), ("96x96 grey", 96, 1))


def write_photos(folder: Path, n_files: int, seed: int = 0) -> list[str]:
    """``n_files`` JPEG crops of scikit-learn's two sample photos in ``folder``."""
    rng = np.random.RandomState(seed)
    photos = load_sample_images().images
    paths = []
    for index in range(n_files):
        photo = photos[index % len(photos)]
        top = rng.randint(photo.shape[0] - CROP[0] + 1)
        left = rng.randint(photo.shape[1] - CROP[1] + 1)
        crop = photo[top : top + CROP[0], left : left + CROP[1]]
        if rng.rand() < 0.5:
            crop = crop[:, ::-1]
        path = folder / f"photo_{index:05d}.jpg"
        Image.fromarray(np.ascontiguousarray(crop)).save(path, quality=90)
        paths.append(str(path))
    return paths


class _DecodeOnly(Dataset):
    """PIL decode alone, as a Dataset for DataLoader workers."""

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        with Image.open(self.paths[index]) as image:
            image.load()
        return index


def _rate(run, n: int, repeats: int) -> float:
    """Images per second of ``run()`` over ``n`` images, best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n / best


def _pil_decode(paths):
    for path in paths:
        with Image.open(path) as image:
            image.load()


def _torchvision_decode(paths):
    for path in paths:
        decode_jpeg(read_file(path))


def _workers_decode(paths, workers: int):
    loader = DataLoader(_DecodeOnly(paths), batch_size=256, num_workers=workers)
    for _ in loader:
        pass


def _package_reads(paths, side: int, channels: int, workers: int, draft: bool = True):
    """The source ``transform`` builds from ``paths`` for a model fitted on
    ``side``-pixel images with ``channels`` channels, read once; ``draft=False``
    decodes every JPEG at full size, as before the draft mode."""
    model = ClusterFitTransformer(num_workers=workers)
    model.image_shape_ = (side, side, channels)
    source = check_images(model, paths, reset=False)
    source.decoder.draft = draft

    def run():
        for _, images in source.iter_batches(256):
            assert images.shape[1:] == (channels, side, side)

    return run


def main():
    parser = common.arguments(__doc__)
    parser.add_argument("--n-files", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n_files, repeats = (40, 1) if args.quick else (args.n_files, args.repeats)
    torch.set_num_threads(1)  # decoding is per process; the figures are per process
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        paths = write_photos(Path(folder), n_files)
        written = time.perf_counter() - start
        rates = {
            "PIL decode alone": _rate(lambda: _pil_decode(paths), n_files, repeats),
            "torchvision decode alone": _rate(lambda: _torchvision_decode(paths), n_files, repeats),
        }
        print(rates, flush=True)
        arms = {}
        for name, side, channels in TARGETS:
            arms[name] = {
                "package": _rate(_package_reads(paths, side, channels, 0), n_files, repeats),
                "package, full-size decode": _rate(
                    _package_reads(paths, side, channels, 0, draft=False), n_files, repeats
                ),
            }
            print(name, arms[name], flush=True)
        two = {
            "PIL decode alone": _rate(lambda: _workers_decode(paths, 2), n_files, repeats),
        }
        for name, side, channels in TARGETS:
            two[name] = _rate(_package_reads(paths, side, channels, workers=2), n_files, repeats)
        print(two, flush=True)
    record = {
        "n_files": n_files,
        "photo_size": list(CROP),
        "repeats": repeats,
        "seconds_to_write": round(written, 1),
        "one_process": {k: round(v, 1) for k, v in rates.items()},
        "targets": {n: {k: round(v, 1) for k, v in a.items()} for n, a in arms.items()},
        "two_workers": {k: round(v, 1) for k, v in two.items()},
    }
    common.save("perf_decode", args.quick, record, markdown)


def markdown(record) -> str:
    one, two = record["one_process"], record["two_workers"]
    alone = one["PIL decode alone"]
    height, width = record["photo_size"]
    lines = common.markdown_header("Photos from files: images per second", record) + [
        f"{record['n_files']} JPEG files, {height}x{width} crops of scikit-learn's two "
        f"sample photos at quality 90; images per second, best of {record['repeats']} "
        "passes over every file. Target: the package's path at least 0.9 times as fast "
        "as decode alone with the same number of processes.",
        "",
        f"Decode alone, one process: PIL {alone:.0f}/s, torchvision "
        f"{one['torchvision decode alone']:.0f}/s.",
        "",
    ]
    rows = [
        [
            name,
            f"{arm['package']:.0f}",
            f"{arm['package'] / alone:.2f}",
            f"{arm['package, full-size decode']:.0f}",
            f"{arm['package, full-size decode'] / alone:.2f}",
            f"{two[name]:.0f}",
            f"{two[name] / two['PIL decode alone']:.2f}",
        ]
        for name, arm in record["targets"].items()
    ]
    header = [
        "resized to",
        "package, 1 process (/s)",
        "vs decode alone",
        "full-size decode (/s)",
        "vs decode alone",
        "package, 2 workers (/s)",
        "vs decode alone in 2 workers",
    ]
    return "\n".join(
        lines
        + common.markdown_table(header, rows)
        + ["", f"PIL decode alone in 2 worker processes: {two['PIL decode alone']:.0f}/s.", ""]
    )


if __name__ == "__main__":
    main()
