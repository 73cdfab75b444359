"""
ClusterFit against raw pixels and PCA, with k-NN and linear probes
==================================================================

Two standard ways to judge a representation without fine-tuning: a linear
classifier (logistic regression on standardised features) and a cosine
20-nearest-neighbour vote. Each is trained on the labels of 1,200 digits and
scored on 597 others; the linear probe also with ten labels per class
(10-shot, mean of ten draws), the regime where the representation matters
most. :func:`~skclusterfit.metrics.probe_scores` runs the three probes.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from skclusterfit import ClusterFitTransformer
from skclusterfit.metrics import probe_scores

X, y = load_digits(return_X_y=True)
order = np.random.RandomState(0).permutation(len(X))
train, test = order[:1200], order[1200:]

pca = PCA(32, random_state=0).fit(X[train])
cf = ClusterFitTransformer(random_state=0).fit(X[train])
representations = {"raw pixels": lambda A: A, "PCA-32": pca.transform, "ClusterFit": cf.transform}


table = {}
for name, transform in representations.items():
    scores = probe_scores(
        transform(X[train]), y[train], transform(X[test]), y[test], random_state=0
    )
    table[name] = list(scores.values())
columns = ["linear", "linear 10-shot", "20-NN"]
print(f"{'':<12}" + "".join(f"{c:>16}" for c in columns))
for name, row in table.items():
    print(f"{name:<12}" + "".join(f"{v:>16.3f}" for v in row))

# %%
# The same numbers as bars
# ------------------------
fig, ax = plt.subplots(figsize=(7, 3.5))
width = 0.25
for i, (name, row) in enumerate(table.items()):
    ax.bar(np.arange(len(columns)) + i * width, row, width, label=name)
ax.set_xticks(np.arange(len(columns)) + width, columns)
ax.set_ylim(0.5, 1.0)
ax.set_ylabel("accuracy on held-out digits")
ax.legend(loc="lower left")
fig.tight_layout()
plt.show()
