"""
A map of the features: t-SNE with thumbnails
============================================

A 2-D map shows what a representation puts together. scikit-learn's
:class:`~sklearn.manifold.TSNE` lays out 500 unseen digits by ClusterFit's
features and by their raw pixels, each point drawn as its image, coloured by
its class (the labels are used only for the colours).
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from sklearn.manifold import TSNE

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_digits

digits = load_digits()
X, y = digits.data, digits.target
cf = ClusterFitTransformer(n_clusters=10, max_epochs=10, extractor_epochs=5, random_state=0)
cf.fit(X[:1200])
shown = np.arange(1200, 1700)

# %%
# Two maps
# --------
# Cosine distances, as the package's searches and k-NN probe use.
maps = {
    "ClusterFit's features": cf.transform(X[shown]),
    "raw pixels": X[shown].astype(np.float32),
}
fig, axes = plt.subplots(1, 2, figsize=(12, 6))
colours = plt.get_cmap("tab10")
for ax, (name, features) in zip(axes, maps.items(), strict=True):
    points = TSNE(metric="cosine", init="pca", random_state=0).fit_transform(features)
    ax.scatter(*points.T, s=0)  # sets the limits
    for (px, py), index in zip(points, shown, strict=True):
        thumbnail = OffsetImage(digits.images[index], cmap="gray_r", zoom=1.2)
        frame = {"edgecolor": colours(y[index]), "linewidth": 1.2}
        ax.add_artist(AnnotationBbox(thumbnail, (px, py), frameon=True, bboxprops=frame, pad=0.1))
    ax.set_title(name)
    ax.set_xticks([])
    ax.set_yticks([])
plt.tight_layout()
plt.show()
