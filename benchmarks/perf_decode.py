"""Image files: images per second of the package's reading path against decode alone.

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
- the package's path at 224x224 colour, 96x96 colour and 96x96 grey, read
  from the source ``transform`` builds from the paths for a model fitted at
  that size (``fit`` builds the same one), in batches of 256, three ways: as
  a fit on the CPU reads them (``iter_batches``: float32 in [0, 1] on the
  host); as they leave the host for a GPU (the source's ``on_device``: uint8,
  images larger than the size shrunk on the host, smaller ones packed as they
  are, to be enlarged and scaled on the device), the part of the reading a
  GPU waits for; and uint8 batches resized on the host whatever their size
  (what left the host for a GPU before the GPU enlarged images);
- the first way again decoding every photo at full size (as before the
  draft mode);
- every way with ``num_workers=2`` DataLoader worker processes, against PIL
  decode alone in two worker processes;
- small files enlarged: the first ``--n-files`` Fashion-MNIST training images
  as 28x28 PNG files, read at 96x96 grey the three ways, in one process and
  in two workers, against PIL decode alone;
- at 224 px, where the draft mode saves nothing, the time of each part of the
  reading on the host (decode, array, resize, layout, batch, scaling), one
  after another.

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
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_sample_images
from torch.utils.data import DataLoader, Dataset
from torchvision.io import decode_jpeg, read_file

from skclusterfit import ClusterFitTransformer
from skclusterfit._testing import check_images
from skclusterfit.datasets import load_fashion_mnist

CROP = (384, 576)
# (arm, image size, channels).
TARGETS = (("224x224 colour", 224, 3), ("96x96 colour", 96, 3), ("96x96 grey", 96, 1))
# The ways of reading (package_reads).
WAYS = ("", ", for a GPU", ", uint8 resized on the host")


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


def _best_of(function, repeats: int) -> tuple:
    """``function()``'s result and its shortest wall time over ``repeats`` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return result, best


def photo_rate(run, n: int, repeats: int) -> float:
    """Images per second of ``run()`` over ``n`` images, best of ``repeats``."""
    return n / _best_of(run, repeats)[1]


def _pil_decode(paths):
    for path in paths:
        with Image.open(path) as image:
            image.load()


def _torchvision_decode(paths):
    for path in paths:
        decode_jpeg(read_file(path))


def decode_in_workers(paths, workers: int):
    loader = DataLoader(_DecodeOnly(paths), batch_size=256, num_workers=workers)
    for _ in loader:
        pass


def package_reads(paths, side: int, channels: int, workers: int, draft: bool = True, way: str = ""):
    """The source ``transform`` builds from ``paths`` for a model fitted on
    ``side``-pixel images with ``channels`` channels, read once, one of three ways:

    - ``""``: as a fit on the CPU reads it, float32 batches on the host;
    - ``", for a GPU"``: as a fit on a GPU reads it (``on_device``), up to
      the batches that leave the host: each image decoded at the size it is
      read at, uint8, packed, for the GPU to resize; on a CUDA machine, up to
      the resized batches on the GPU;
    - ``", uint8 resized on the host"``: the uint8 batches resized by the
      decoding processes, before they are scaled (what left the host for a GPU
      before the GPU resized them).

    ``draft=False`` decodes every JPEG at full size, as before the draft mode."""
    model = ClusterFitTransformer(num_workers=workers)
    model.image_shape_ = (side, side, channels)
    source = check_images(model, paths, reset=False)
    source.decoder.draft = draft
    cuda = torch.device("cuda")
    on_gpu = source.on_device(cuda)  # what a fit on a GPU reads

    def run():
        if way == "":
            for _, images in source.iter_batches(256):
                assert images.shape[1:] == (channels, side, side)
        elif way == ", uint8 resized on the host":
            for _, images in source.iter_read(256):
                assert images.shape[1:] == (side, side, channels)
        elif torch.cuda.is_available():
            for _, images in on_gpu.iter_batches(256, None, cuda):
                assert images.shape[1:] == (channels, side, side) and images.is_cuda
            torch.cuda.synchronize()
        else:
            for _, (flat, shapes) in on_gpu.iter_read(256):
                assert flat.dtype == torch.uint8 and (shapes[:, 2] == channels).all()

    return run


def parts(paths, side: int, repeats: int) -> dict:
    """Milliseconds per image of each part of the reading to ``side`` px colour, one process.

    The operations the package runs for a JPEG photo that the draft mode
    cannot shrink, one at a time over every file, each timed on the previous
    part's output (best of ``repeats``); the batch is of all the files.
    """

    def timed(function):
        result, seconds = _best_of(function, repeats)
        return result, round(1000 * seconds / len(paths), 3)

    found = {}
    images, found["decode (PIL)"] = timed(lambda: [_opened(path) for path in paths])
    arrays, found["to an array"] = timed(lambda: [np.array(image) for image in images])
    resized, found["resize, uint8 (torch, antialiased)"] = timed(
        lambda: [
            F.interpolate(
                torch.from_numpy(a).permute(2, 0, 1)[None],
                (side, side),
                mode="bilinear",
                antialias=True,
            )[0]
            for a in arrays
        ]
    )
    hwc, found["to (H, W, C) memory"] = timed(
        lambda: [image.permute(1, 2, 0).contiguous() for image in resized]
    )
    batch, found["batch (stack)"] = timed(lambda: torch.stack(hwc))
    _, found["scale to float32 [0, 1]"] = timed(lambda: batch.to(torch.float32).mul_(1 / 255))
    return found


def small_files(folder: Path, n_files: int, repeats: int) -> dict:
    """Images per second of 28x28 grey PNG files read at 96x96, each way, against decode alone."""
    paths = []
    for index, image in enumerate(load_fashion_mnist("train").images[:n_files]):
        paths.append(str(folder / f"fashion_{index:05d}.png"))
        Image.fromarray(image).save(paths[-1])
    found = {}
    for workers in (0, 2):
        alone = (
            (lambda: _pil_decode(paths)) if workers == 0 else lambda: decode_in_workers(paths, 2)
        )
        where = "1 process" if workers == 0 else "2 workers"
        found[where] = {"PIL decode alone": round(photo_rate(alone, n_files, repeats), 1)}
        for way in WAYS:
            rate = photo_rate(package_reads(paths, 96, 1, workers, way=way), n_files, repeats)
            found[where][f"package{way}"] = round(rate, 1)
    return found


def _opened(path):
    with Image.open(path) as image:
        image.load()
        return image


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
            "PIL decode alone": photo_rate(lambda: _pil_decode(paths), n_files, repeats),
            "torchvision decode alone": photo_rate(
                lambda: _torchvision_decode(paths), n_files, repeats
            ),
        }
        print(rates, flush=True)
        arms = {}
        for name, side, channels in TARGETS:
            arms[name] = {
                f"package{way}": photo_rate(
                    package_reads(paths, side, channels, 0, way=way), n_files, repeats
                )
                for way in WAYS
            }
            arms[name]["package, full-size decode"] = photo_rate(
                package_reads(paths, side, channels, 0, draft=False), n_files, repeats
            )
            print(name, arms[name], flush=True)
        two = {
            "PIL decode alone": photo_rate(lambda: decode_in_workers(paths, 2), n_files, repeats),
        }
        for name, side, channels in TARGETS:
            for way in WAYS:
                two[f"{name}{way}"] = photo_rate(
                    package_reads(paths, side, channels, 2, way=way), n_files, repeats
                )
        print(two, flush=True)
        steps = parts(paths, 224, repeats)
        print(steps, flush=True)
        small = small_files(Path(folder), n_files, repeats)
        print(small, flush=True)
    record = {
        "n_files": n_files,
        "photo_size": list(CROP),
        "repeats": repeats,
        "seconds_to_write": round(written, 1),
        "one_process": {k: round(v, 1) for k, v in rates.items()},
        "targets": {n: {k: round(v, 1) for k, v in a.items()} for n, a in arms.items()},
        "two_workers": {k: round(v, 1) for k, v in two.items()},
        "parts_224_ms_per_image": steps,
        "small_files_to_96": small,
    }
    common.save("perf_decode", args.quick, record, markdown)


def markdown(record) -> str:
    one, two = record["one_process"], record["two_workers"]
    alone = one["PIL decode alone"]
    height, width = record["photo_size"]
    lines = common.markdown_header("Photos from files: images per second", record) + [
        f"{record['n_files']} JPEG files, {height}x{width} crops of scikit-learn's two "
        f"sample photos at quality 90; images per second, best of {record['repeats']} "
        "passes over every file. Each size is read as a fit on the CPU reads it (float32 "
        "on the host), as it leaves the host for a GPU (uint8; images with more pixels than "
        "the size shrunk on the host, the others left for the GPU to enlarge, which is not "
        "timed here), and as uint8 batches resized on the host. "
        "Target: the package's path at least 0.9 times as fast as decode alone with the "
        "same number of processes.",
        "",
        f"Decode alone, one process: PIL {alone:.0f}/s, torchvision "
        f"{one['torchvision decode alone']:.0f}/s.",
        "",
    ]
    alone_two = two["PIL decode alone"]
    rows_photos = [
        [
            f"{name}{way}",
            f"{arm['package' + way]:.0f} ({arm['package' + way] / alone:.2f})",
            f"{two[name + way]:.0f} ({two[name + way] / alone_two:.2f})",
            ""
            if way
            else f"{arm['package, full-size decode']:.0f} "
            f"({arm['package, full-size decode'] / alone:.2f})",
        ]
        for name, arm in record["targets"].items()
        for way in WAYS
        if "package" + way in arm
    ]
    header = [
        "resized to, read",
        "1 process (/s; vs decode alone)",
        "2 workers (/s; vs decode alone in 2)",
        "full-size decode, 1 process",
    ]
    small = record["small_files_to_96"]
    rows = [
        [
            f"96x96 grey{way}",
            *(
                f"{small[where]['package' + way]:.0f} "
                f"({small[where]['package' + way] / small[where]['PIL decode alone']:.2f})"
                for where in ("1 process", "2 workers")
            ),
        ]
        for way in WAYS
    ]
    enlarged = [
        "",
        f"Small files enlarged: {record['n_files']} Fashion-MNIST training images as 28x28 "
        "grey PNG files; PIL decode alone "
        f"{small['1 process']['PIL decode alone']:.0f}/s in one process, "
        f"{small['2 workers']['PIL decode alone']:.0f}/s in two workers.",
        "",
        *common.markdown_table(
            ["read at, way", "1 process (/s; vs decode alone)", "2 workers (/s; vs decode alone)"],
            rows,
        ),
    ]
    return "\n".join(
        lines
        + common.markdown_table(header, rows_photos)
        + ["", f"PIL decode alone in 2 worker processes: {two['PIL decode alone']:.0f}/s.", ""]
        + ["Part by part, to 224x224 colour, one process (ms per image):", ""]
        + common.markdown_table(
            ["part", "ms"], [[k, f"{v:.2f}"] for k, v in record["parts_224_ms_per_image"].items()]
        )
        + enlarged
        + [""]
    )


if __name__ == "__main__":
    main()
