"""
From a folder of image files to a look at the clusters
======================================================

The usual start: a folder of image files and no labels. This example fits
:class:`~skclusterfit.ClusterFitTransformer` on the files' paths, looks at
sample images of each cluster with :class:`~skclusterfit.metrics.ClusterDisplay`,
writes the clusters out as one folder per cluster with
:func:`~skclusterfit.datasets.export_clusters`, and, for the few images that
do have labels, asks :func:`~skclusterfit.metrics.representation_report`
whether ClusterFit's features read the classes better than the pixels.

The images are scikit-learn's 8x8 digits, written as PNG files to a
temporary folder, so that the example runs anywhere in well under a minute.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from PIL import Image

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import export_clusters, load_digits
from skclusterfit.metrics import ClusterDisplay, representation_report

# %%
# A folder of image files
# -----------------------
# 1,200 unlabelled images to fit on, and 597 others whose labels we keep aside.
digits = load_digits()
root = Path(tempfile.mkdtemp(prefix="skclusterfit-example-"))
for part in ("unlabelled", "labelled"):
    (root / part).mkdir()
for index, image in enumerate(digits.images):
    part = "unlabelled" if index < 1200 else "labelled"
    Image.fromarray(image).save(root / part / f"digit_{index:04d}.png")
paths = sorted(str(p) for p in (root / "unlabelled").glob("*.png"))
labelled = sorted(str(p) for p in (root / "labelled").glob("*.png"))
labels = digits.target[1200:]  # in file-name order, as `labelled`
print(f"{len(paths)} files such as {Path(paths[0]).name} in {root / 'unlabelled'}")

# %%
# Fit on the paths
# ----------------
# Files are read in batches as the networks need them, never all at once.
# Half the default epochs keep the example short.
cf = ClusterFitTransformer(n_clusters=10, max_epochs=10, extractor_epochs=5, random_state=0)
cf.fit(paths)
print(f"{cf.n_clusters_} clusters of images {cf.image_shape_[:2]}, {cf.image_shape_[2]} channel")

# %%
# What each cluster holds
# -----------------------
# One row per cluster with its size; each row shows the images N_cf is surest
# belong to the cluster. The clusters are N_cf's (``predict``), so the same
# display works for files the model has never seen.
ClusterDisplay.from_estimator(cf, paths, n_images=8)
plt.show()

# %%
# One folder per cluster
# ----------------------
# ``export_clusters`` links (or copies) each file into ``cluster_<id>/``, the
# layout of an image-folder data set whose classes are the clusters, and
# lists every file's cluster and N_cf's confidence in it in a CSV.
out = root / "clusters"
csv_path = export_clusters(cf, paths, out, mode="link")
for folder in sorted(p for p in out.iterdir() if p.is_dir())[:4]:
    files = sorted(f.name for f in folder.iterdir())
    print(f"{folder.name}/  {len(files):4d} files: {', '.join(files[:2])}, ...")
print("...")
print("".join(csv_path.read_text().splitlines(keepends=True)[:5]).replace(str(root), "<root>"))

# %%
# Is it worth it on these images?
# -------------------------------
# The labelled files, cross-validated: probes on ClusterFit's features (N_cf),
# its extractor's (N_pre), the raw pixels and a PCA of them.
report = representation_report(cf, labelled, labels, cv=3, pca_components=16, random_state=0)
print(report)
