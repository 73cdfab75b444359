"""
What the clusters look like, and how training went
==================================================

The pseudo-labels that N_cf learns are k-means clusters of the extractor's
embeddings. Looking at a few images from each cluster shows what the extractor
considers alike; ``history_`` shows how each stage trained.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skclusterfit import ClusterFitTransformer
from skclusterfit.metrics import cluster_accuracy, normalized_mutual_info_score

X, y = load_digits(return_X_y=True)
cf = ClusterFitTransformer(n_clusters=12, random_state=0).fit(X)
print(
    f"{cf.n_clusters_} clusters; against the digit labels: cluster accuracy "
    f"{cluster_accuracy(y, cf.labels_):.3f}, NMI "
    f"{normalized_mutual_info_score(y, cf.labels_):.3f}"
)

# %%
# Eight images from each cluster
# ------------------------------
# Each row is one cluster; its images are a random draw of the cluster's members.
rng = np.random.RandomState(0)
fig, axes = plt.subplots(cf.n_clusters_, 8, figsize=(6, 0.8 * cf.n_clusters_))
for cluster, row in enumerate(axes):
    members = rng.choice(np.flatnonzero(cf.labels_ == cluster), 8, replace=True)
    for ax, index in zip(row, members, strict=True):
        ax.imshow(X[index].reshape(8, 8), cmap="gray_r")
        ax.set_xticks([])
        ax.set_yticks([])
    row[0].set_ylabel(str(cluster), rotation=0, labelpad=12)
fig.suptitle("Samples per pseudo-label")
plt.show()

# %%
# Training curves from ``history_``
# ---------------------------------
fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(8, 3))
for stage in ("rotnet", "clusterfit"):
    records = [h for h in cf.history_ if h["stage"] == stage]
    epochs = [h["epoch"] for h in records]
    loss_ax.plot(epochs, [h["loss"] for h in records], marker=".", label=stage)
    acc_ax.plot(epochs, [h["accuracy"] for h in records], marker=".", label=stage)
loss_ax.set(xlabel="epoch", ylabel="training loss")
acc_ax.set(xlabel="epoch", ylabel="training accuracy")
acc_ax.legend()
fig.tight_layout()
plt.show()
