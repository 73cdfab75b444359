"""
Outliers: images unlike the others
==================================

:meth:`ImageIndex.outlier_scores <skclusterfit.neighbors.ImageIndex.outlier_scores>`
scores each image by its cosine distance to its k-th nearest indexed image:
high where few images are like it. :class:`~skclusterfit.neighbors.OutliersDisplay`
shows the images that score highest.

The outliers here are 30 patches of the two photographs that ship with
scikit-learn, shrunk to 8x8 grey images, mixed into unseen digits. Two ways to
score are compared: new images against an index of trusted images, and the
fitted images among themselves.
"""

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images
from sklearn.metrics import roc_auc_score

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_digits
from skclusterfit.neighbors import ImageIndex, OutliersDisplay

digits = load_digits()
X = digits.data.astype(np.float64)  # values 0-255
rng = np.random.RandomState(0)
patches = []
for photo in load_sample_images().images:
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    for _ in range(15):
        top, left = rng.randint(0, grey.shape[0] - 64), rng.randint(0, grey.shape[1] - 64)
        patch = Image.fromarray(grey[top : top + 64, left : left + 64]).resize((8, 8))
        patches.append(np.asarray(patch, dtype=np.float64).reshape(-1))
unseen = np.concatenate([X[1200:1500], np.stack(patches)])
is_photo = np.r_[np.zeros(300), np.ones(len(patches))]

# %%
# Fit on digits, index them
# -------------------------
cf = ClusterFitTransformer(n_clusters=10, max_epochs=10, extractor_epochs=5, random_state=0)
cf.fit(X[:1200])
trusted = ImageIndex(cf, n_neighbors=10).fit(X[:1200])

# %%
# New images against trusted ones
# -------------------------------
# ``outlier_scores(X)`` scores images the index was not fitted on against the
# fitted ones, so outliers cannot vouch for one another.
scores = trusted.outlier_scores(unseen)
print(f"photo patches among unseen digits, ROC AUC: {roc_auc_score(is_photo, scores):.3f}")
OutliersDisplay.from_index(trusted, unseen, n_images=16)
plt.show()

# %%
# The images of a collection among themselves
# -------------------------------------------
# ``outlier_scores()`` scores the fitted images, each leaving itself out. A
# group of similar outliers are each other's neighbours, and score lower;
# the benchmarks page measures how much lower on Fashion-MNIST with MNIST
# digits mixed in.
collection = ImageIndex(cf, n_neighbors=10).fit(unseen)
print(
    f"the same images among themselves: {roc_auc_score(is_photo, collection.outlier_scores()):.3f}"
)
