"""Peak memory and time of ``fit`` on image files, against the number of files.

Writes the first 50,000 Fashion-MNIST training images as PNG files into a
temporary folder, then fits ClusterFitTransformer on the list of the first N
paths, N in {2k, 10k, 50k}, each in a fresh process: one epoch per trained
stage, 10 clusters, ``features_dir`` set so that N_pre's features are kept in a
memory-mapped file. Reported per N: wall time of ``fit``, the process's peak
resident memory (``ru_maxrss``) and its resident memory just before ``fit``
(Python, torch and the list of paths loaded).

Target: memory flat in N apart from the per-image feature arrays. The fitted
slope (MB per 10k images) is compared with the size of those arrays: N_pre's
features and their normalised copy, both float32 and memory-mapped, whose pages
count as resident while they are read or written.

Usage::

    python benchmarks/perf_memory_files.py           # N = 2k, 10k, 50k
    python benchmarks/perf_memory_files.py --quick   # N = 300, 600
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common
import numpy as np
from PIL import Image

from skclusterfit.datasets import load_fashion_mnist

CHILD = """
import json, resource, sys, time
from pathlib import Path
from skclusterfit import ClusterFitTransformer

folder, n = Path(sys.argv[1]), int(sys.argv[2])
paths = [folder / f"{i:05d}.png" for i in range(n)]

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

before = rss_mb()
start = time.perf_counter()
cf = ClusterFitTransformer(
    n_clusters=10, extractor_epochs=1, max_epochs=1, random_state=0,
    features_dir=folder / "features",
).fit(paths)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
width = len(cf.set_params(feature_layer="extractor").get_feature_names_out())
print(json.dumps({
    "n": n, "seconds": seconds, "rss_before_mb": before, "peak_rss_mb": peak,
    "feature_width": width, "clusterer": repr(cf.clusterer_),
}))
"""


def write_pngs(folder: Path, n: int) -> float:
    """The first ``n`` Fashion-MNIST training images as PNG files; returns seconds."""
    start = time.perf_counter()
    images = load_fashion_mnist("train").images[:n]
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:05d}.png")
    return time.perf_counter() - start


def main():
    quick = common.arguments(__doc__).parse_args().quick
    sizes = [300, 600] if quick else [2_000, 10_000, 50_000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        png_seconds = write_pngs(folder, max(sizes))
        for n in sizes:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(folder), str(n)],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    n = np.array([r["n"] for r in rows], dtype=float)
    growth = np.array([r["peak_rss_mb"] - r["rss_before_mb"] for r in rows])
    per_10k, fixed = np.polyfit(n / 10_000, growth, 1)
    # N_pre's features and their normalised copy, float32, per 10k images.
    arrays_per_10k = 2 * rows[-1]["feature_width"] * 4 * 10_000 / 1e6
    fields = {
        "png_writing_seconds": png_seconds,
        "rows": rows,
        "memory_mb_per_10k_images": float(per_10k),
        "memory_fixed_mb": float(fixed),
        "feature_arrays_mb_per_10k_images": arrays_per_10k,
    }
    common.save("perf_memory_files", quick, fields, markdown)


def markdown(record):
    lines = common.markdown_header("fit on PNG files: peak memory and time against N", record) + [
        "Fashion-MNIST training images as 28x28 PNG files; `fit` on the list of paths "
        "with one epoch per trained stage, 10 clusters and `features_dir` set; each N "
        "in a fresh process.",
        "",
    ]
    columns = ["N", "fit (s)", "RSS before fit (MB)", "peak RSS (MB)", "peak above before (MB)"]
    rows = [
        [r["n"], f"{r['seconds']:.1f}", f"{r['rss_before_mb']:.0f}", f"{r['peak_rss_mb']:.0f}"]
        + [f"{r['peak_rss_mb'] - r['rss_before_mb']:.0f}", r["clusterer"]]
        for r in record["rows"]
    ]
    lines += common.markdown_table([*columns, "clusterer"], rows) + [
        "",
        f"Peak memory above the start grows by {record['memory_mb_per_10k_images']:.1f} MB "
        f"per 10k images on top of {record['memory_fixed_mb']:.0f} MB; N_pre's features and "
        f"their normalised copy (memory-mapped float32) take "
        f"{record['feature_arrays_mb_per_10k_images']:.1f} MB per 10k images.  ",
        f"Writing the PNG files took {record['png_writing_seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
