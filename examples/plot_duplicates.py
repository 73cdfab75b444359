"""
Near-duplicates: finding edited copies among the images
=======================================================

Collections of images hold copies: the same picture re-saved, brightened,
re-encoded. :meth:`ImageIndex.duplicates <skclusterfit.neighbors.ImageIndex.duplicates>`
groups the images within a cosine distance of one another, and
:class:`~skclusterfit.neighbors.DuplicatesDisplay` shows the groups.

Here 40 edited copies of digits (brightened, darkened, with noise added) are
hidden among 1,200 digits, so we can count what the groups find. The
threshold is a choice, and this example shows one way to make it.
"""

import matplotlib.pyplot as plt
import numpy as np

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_digits
from skclusterfit.neighbors import DUPLICATE_THRESHOLD, DuplicatesDisplay, ImageIndex

digits = load_digits()
X = digits.data[:1200].astype(np.float64)
rng = np.random.RandomState(0)
originals = rng.choice(len(X), 40, replace=False)
edits = [
    lambda image: np.clip(image * 1.15, 0, 255),  # brighter
    lambda image: image * 0.85,  # darker
    lambda image: np.clip(image + rng.normal(0, 6, image.shape), 0, 255),  # noise
]
copies = np.stack([edits[i % 3](X[j]) for i, j in enumerate(originals)])
images = np.concatenate([X, copies])
copy_of = dict(zip(range(len(X), len(images)), originals, strict=True))

# %%
# Fit and index
# -------------
cf = ClusterFitTransformer(n_clusters=10, max_epochs=10, extractor_epochs=5, random_state=0)
cf.fit(images)
index = ImageIndex(cf).fit(images)

# %%
# Choosing the threshold
# ----------------------
# The default threshold was chosen on Fashion-MNIST; distances differ between
# data sets and models. One way to choose: make edited copies of some of your
# own images, find how far each lies from its original (the original is its
# nearest indexed image), and take a distance that covers most of them.
# Below, the histogram compares those distances with each image's distance
# to its nearest other image.
sample = rng.choice(len(X), 100, replace=False)
made = np.stack([edits[i % 3](X[j]) for i, j in enumerate(sample)])
made_distance, made_nearest = index.kneighbors(made, n_neighbors=1)
print(f"{(made_nearest[:, 0] == sample).mean():.0%} of the made copies find their original first")
threshold = float(np.quantile(made_distance, 0.9))
distances, _ = index.kneighbors(n_neighbors=1)
bins = np.linspace(0, np.quantile(distances, 0.99), 40)
plt.hist(distances[:, 0], bins=bins, alpha=0.6, label="each image: its nearest other image")
plt.hist(made_distance[:, 0], bins=bins, alpha=0.6, label="made copies: their original")
plt.axvline(threshold, color="k", linestyle="--", label="chosen threshold")
plt.axvline(DUPLICATE_THRESHOLD, color="grey", linestyle=":", label="default threshold")
plt.xlabel("cosine distance")
plt.legend()
plt.show()

# %%
# The groups
# ----------
# A hidden copy is found when it shares a group with its original; the
# groups' sizes show what else a threshold links.
for name, value in (("chosen", threshold), ("default", DUPLICATE_THRESHOLD)):
    groups = index.duplicates(value)
    group_of = {int(i): g for g, group in enumerate(groups) for i in group}
    found = sum(c in group_of and group_of[c] == group_of.get(int(o)) for c, o in copy_of.items())
    print(
        f"{name} threshold {value:.4f}: {len(groups)} groups holding "
        f"{sum(len(g) for g in groups)} images; {found} of {len(copy_of)} hidden copies found"
    )
DuplicatesDisplay.from_index(index, threshold=threshold, n_groups=8, n_images=4)
plt.show()

# %%
# For image files, :func:`~skclusterfit.datasets.export_duplicates` writes
# each group's files into a folder of its own, with a CSV of the groups
# (see :ref:`sphx_glr_auto_examples_plot_command_line.py`).
