"""write_features on 50,000 image files: peak memory, time, and a resume after a kill.

Writes the first 50,000 Fashion-MNIST training images as PNG files, fits a
model on the first 2,000 (the defaults but 2 epochs per trained stage: the
model's quality does not change what writing costs), saves it, then, each in
a fresh process that loads the model file:

- ``write_features`` of all the files (chunks of 4,096): its wall time, the
  process's peak resident memory (``VmHWM``) and the memory just before;
- ``transform`` of all the files, the features held in memory, for comparison;
- a second ``write_features`` killed (SIGKILL) once 5 chunks are on disk, then
  resumed in another process that counts the images it transforms.

Targets: peak memory under 1 GiB; the resumed write transforms only the
images of the chunks the killed one had not finished, and its features equal
the uninterrupted write's.

Usage::

    python benchmarks/perf_write_features.py           # 50,000 files
    python benchmarks/perf_write_features.py --quick   # 1,000 files, chunks of 128, 1 epoch
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common
import numpy as np

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_features

CHILD = """
import json, sys, time
from pathlib import Path
from skclusterfit import load
from skclusterfit.datasets import write_features

model_file, folder, n, out, chunk, what = sys.argv[1:7]
paths = [str(Path(folder) / f"{i:05d}.png") for i in range(int(n))]

def status_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

model = load(model_file)
transformed = []
transform = model.transform
model.transform = lambda X: transformed.append(len(X)) or transform(X)
before = status_mb("VmRSS")
start = time.perf_counter()
if what == "transform":
    width = transform(paths).shape[1]
else:
    write_features(model, paths, out, chunk_size=int(chunk))
print(json.dumps({
    "seconds": time.perf_counter() - start, "rss_before_mb": before,
    "peak_rss_mb": status_mb("VmHWM"), "images_transformed": sum(transformed),
}))
"""


def child(*args) -> dict:
    found = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, args)], capture_output=True, text=True, check=True
    )
    return json.loads(found.stdout.strip().splitlines()[-1])


def killed_after(n_chunks: int, *args) -> int:
    """Start a write, SIGKILL it once ``n_chunks`` chunks are done; the chunks then done."""
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, *map(str, args)], stdout=subprocess.DEVNULL
    )
    chunks = Path(args[3]) / "chunks"
    while process.poll() is None:
        if chunks.is_dir() and len(os.listdir(chunks)) >= n_chunks:
            process.send_signal(signal.SIGKILL)
            process.wait()
            break
        time.sleep(0.05)
    return len(os.listdir(chunks))


def main():
    args = common.arguments(__doc__).parse_args()
    n, chunk, n_fit, epochs = (1_000, 128, 300, 1) if args.quick else (50_000, 4_096, 2_000, 2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "images").mkdir()
        png_seconds = common.write_pngs(tmp / "images", n)
        paths = [str(tmp / "images" / f"{i:05d}.png") for i in range(n_fit)]
        model = ClusterFitTransformer(extractor_epochs=epochs, max_epochs=epochs, random_state=0)
        model.fit(paths)
        model.save(tmp / "model.pt")
        common_args = (tmp / "model.pt", tmp / "images", n)
        written = child(*common_args, tmp / "features", chunk, "write")
        in_memory = child(*common_args, tmp / "unused", chunk, "transform")
        n_chunks = -(-n // chunk)
        done_before = killed_after(5, *common_args, tmp / "resumed", chunk, "write")
        resumed = child(*common_args, tmp / "resumed", chunk, "write")
        full, again = load_features(tmp / "features"), load_features(tmp / "resumed")
        expected = n - sum(min(chunk, n - c * chunk) for c in range(n_chunks) if c < done_before)
        fields = {
            "n_files": n,
            "chunk_size": chunk,
            "fit": {"n_files": n_fit, "epochs": epochs},
            "feature_width": int(full.features.shape[1]),
            "png_writing_seconds": round(png_seconds, 1),
            "write_features": written,
            "transform_in_memory": in_memory,
            "resume": {
                "chunks": n_chunks,
                "chunks_done_when_killed": done_before,
                "images_transformed_on_resume": resumed["images_transformed"],
                "images_of_the_missing_chunks": expected,
                "features_equal_uninterrupted": bool(np.array_equal(full.features, again.features)),
                "seconds": resumed["seconds"],
            },
        }
    common.save("perf_write_features", args.quick, fields, markdown)


def markdown(record: dict) -> str:
    write, memory, resume = (
        record["write_features"],
        record["transform_in_memory"],
        record["resume"],
    )
    lines = common.markdown_header("write_features on image files", record) + [
        f"{record['n_files']} Fashion-MNIST training images as 28x28 PNG files; a model fitted "
        f"on the first {record['fit']['n_files']} (defaults, {record['fit']['epochs']} epochs per "
        "trained stage), "
        f"{record['feature_width']} features per image; chunks of {record['chunk_size']}; each "
        "run in a fresh process that loads the model file.",
        "",
        *common.markdown_table(
            ["run", "seconds", "RSS before (MB)", "peak RSS (MB)"],
            [
                [
                    name,
                    f"{r['seconds']:.1f}",
                    f"{r['rss_before_mb']:.0f}",
                    f"{r['peak_rss_mb']:.0f}",
                ]
                for name, r in (("write_features", write), ("transform, in memory", memory))
            ],
        ),
        "",
        f"Resume: the write killed with {resume['chunks_done_when_killed']} of "
        f"{resume['chunks']} chunks on disk; the resumed one transformed "
        f"{resume['images_transformed_on_resume']} images (the missing chunks hold "
        f"{resume['images_of_the_missing_chunks']}) in {resume['seconds']:.1f} s; its features "
        + ("equal" if resume["features_equal_uninterrupted"] else "differ from")
        + " the uninterrupted write's.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
