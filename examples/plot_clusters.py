"""
What the clusters look like, and how training went
==================================================

The pseudo-labels that N_cf learns are k-means clusters of the extractor's
embeddings. Looking at a few images from each cluster shows what the extractor
considers alike; ``history_`` shows how each stage trained.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from skclusterfit import ClusterFitTransformer
from skclusterfit.metrics import ClusterDisplay, cluster_accuracy, normalized_mutual_info_score

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
# :class:`~skclusterfit.metrics.ClusterDisplay` draws one row per cluster (as
# N_cf predicts them), titled with its size: first the images N_cf is surest
# of, then a random draw of each cluster's members.
ClusterDisplay.from_estimator(cf, X, n_images=8, cmap="gray_r")
plt.show()

ClusterDisplay.from_estimator(cf, X, n_images=8, order="random", random_state=0, cmap="gray_r")
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
