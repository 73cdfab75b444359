"""Peak memory and time of ``fit`` on image files, against the number of files.

Writes the first N Fashion-MNIST training images (the largest N) as PNG files
into a temporary folder, then fits ClusterFitTransformer on the list of the
first N paths, N in {2k, 10k, 50k} (``--sizes``), each in a fresh process: one
epoch per trained stage, 10 clusters (``--n-clusters``), ``features_dir`` set
so that N_pre's features are kept in a memory-mapped file. Reported per N: wall
time of ``fit``, the process's peak resident memory (``VmHWM``) and its
resident memory just before ``fit`` (Python, torch and the list of paths
loaded).

Target: memory flat in N apart from the per-image feature arrays. The fitted
slope (MB per 10k images) is compared with the size of N_pre's features
(float32, memory-mapped, whose pages count as resident while they are read or
written). Also reported, for the clustering call alone, where copies of the
features would show: its peak resident memory above the memory at its start
(the peak is reset at its start through ``/proc/self/clear_refs``), and the
peak of the numpy arrays it allocates (``tracemalloc``), which counts copies
that reuse memory freed earlier in the process, as resident memory does not.

``--in-memory`` fits without ``features_dir``, keeping the features in memory,
and writes ``results/perf_memory_files_in_memory.*``.

Usage::

    python benchmarks/perf_memory_files.py                       # N = 2k, 10k, 50k
    python benchmarks/perf_memory_files.py --sizes 2000 10000    # chosen N
    python benchmarks/perf_memory_files.py --in-memory           # no features_dir
    python benchmarks/perf_memory_files.py --n-clusters 100      # k-means, not faiss
    python benchmarks/perf_memory_files.py --quick               # N = 300, 600
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import _common as common
import numpy as np

CHILD = """
import json, sys, time, tracemalloc
from pathlib import Path
from skclusterfit import ClusterFitTransformer
from skclusterfit._testing import observing_clustering

folder, n, in_memory = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
n_clusters = int(sys.argv[4])
paths = [folder / f"{i:05d}.png" for i in range(n)]

def status_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

peaks = []

def measured(cluster, *args, **kwargs):
    # The peak so far is kept, then reset, so that the clustering's own shows.
    peaks.append(status_mb("VmHWM"))
    start = status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as stream:
        stream.write("5")
    tracemalloc.start()  # numpy's arrays, which freed memory reused can hide from RSS
    result = cluster(*args, **kwargs)
    peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
    tracemalloc.stop()
    peaks.append(status_mb("VmHWM"))
    peaks.append(status_mb("VmHWM") - start)
    return result

before = status_mb("VmRSS")
start = time.perf_counter()
with observing_clustering(measured):
    cf = ClusterFitTransformer(
        n_clusters=n_clusters, extractor_epochs=1, max_epochs=1, random_state=0,
        features_dir=None if in_memory else folder / "features",
    ).fit(paths)
seconds = time.perf_counter() - start
peak = max(peaks[0], status_mb("VmHWM"))
width = len(cf.set_params(feature_layer="extractor").get_feature_names_out())
print(json.dumps({
    "n": n, "seconds": seconds, "rss_before_mb": before, "peak_rss_mb": peak,
    "clustering_peak_above_start_mb": peaks[3],
    "clustering_arrays_peak_mb": peaks[1],
    "feature_width": width, "clusterer": str(cf.clusterer_),
}))
"""


def main():
    parser = common.arguments(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 10_000, 50_000])
    parser.add_argument("--in-memory", action="store_true", help="fit without features_dir")
    parser.add_argument("--n-clusters", type=int, default=10)
    args = parser.parse_args()
    quick = args.quick
    sizes = [300, 600] if quick else args.sizes
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        png_seconds = common.write_pngs(folder, max(sizes))
        for n in sizes:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(folder), str(n), str(int(args.in_memory))]
                + [str(args.n_clusters)],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    n = np.array([r["n"] for r in rows], dtype=float)
    growth = np.array([r["peak_rss_mb"] - r["rss_before_mb"] for r in rows])
    per_10k, fixed = np.polyfit(n / 10_000, growth, 1)
    # N_pre's features, float32, per 10k images.
    arrays_per_10k = rows[-1]["feature_width"] * 4 * 10_000 / 1e6
    fields = {
        "in_memory": args.in_memory,
        "n_clusters": args.n_clusters,
        "png_writing_seconds": png_seconds,
        "rows": rows,
        "memory_mb_per_10k_images": float(per_10k),
        "memory_fixed_mb": float(fixed),
        "feature_arrays_mb_per_10k_images": arrays_per_10k,
    }
    stem = "perf_memory_files_in_memory" if args.in_memory else "perf_memory_files"
    common.save(stem, quick, fields, markdown)


def _mb(value) -> str:
    # Records written before the clustering was measured on its own lack its columns.
    return "not measured" if value is None else f"{value:.0f}"


def markdown(record):
    in_memory = record.get("in_memory", False)
    lines = common.markdown_header("fit on PNG files: peak memory and time against N", record) + [
        "Fashion-MNIST training images as 28x28 PNG files; `fit` on the list of paths "
        f"with one epoch per trained stage, {record.get('n_clusters', 10)} clusters and "
        + ("the features in memory" if in_memory else "`features_dir` set")
        + "; each N in a fresh process.",
        "",
    ]
    columns = ["N", "fit (s)", "RSS before fit (MB)", "peak RSS (MB)", "peak above before (MB)"]
    columns += ["clustering: peak above its start (MB)", "clustering: peak of new arrays (MB)"]
    columns += ["clusterer"]
    rows = [
        [r["n"], f"{r['seconds']:.1f}", f"{r['rss_before_mb']:.0f}", f"{r['peak_rss_mb']:.0f}"]
        + [f"{r['peak_rss_mb'] - r['rss_before_mb']:.0f}"]
        + [_mb(r.get("clustering_peak_above_start_mb")), _mb(r.get("clustering_arrays_peak_mb"))]
        + [r["clusterer"]]
        for r in record["rows"]
    ]
    lines += common.markdown_table(columns, rows) + [
        "",
        f"Peak memory above the start grows by {record['memory_mb_per_10k_images']:.1f} MB "
        f"per 10k images on top of {record['memory_fixed_mb']:.0f} MB; N_pre's features "
        f"(float32{'' if in_memory else ', memory-mapped'}) take "
        f"{record['feature_arrays_mb_per_10k_images']:.1f} MB per 10k images.  ",
        f"Writing the PNG files took {record['png_writing_seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
