"""
ClusterFit against raw pixels and PCA, with k-NN and linear probes
==================================================================

Two standard ways to judge a representation without fine-tuning: a linear
classifier (logistic regression on standardised features) and a cosine
20-nearest-neighbour vote. Each is trained on the labels of 1,200 digits and
scored on 597 others, with all labels (full) and with ten per class (10-shot,
mean of ten draws), the regime where the representation matters most.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from skclusterfit import ClusterFitTransformer
from skclusterfit.metrics import few_shot_score, knn_score, linear_probe_score

X, y = load_digits(return_X_y=True)
order = np.random.RandomState(0).permutation(len(X))
train, test = order[:1200], order[1200:]

pca = PCA(32, random_state=0).fit(X[train])
cf = ClusterFitTransformer(random_state=0).fit(X[train])
representations = {"raw pixels": lambda A: A, "PCA-32": pca.transform, "ClusterFit": cf.transform}


def knn_few_shot(F_train, F_test):
    """k-NN with ten labelled images per class (so at most 10 neighbours), ten draws."""
    rng = np.random.RandomState(0)
    scores = []
    for _ in range(10):
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(y[train] == c), 10, replace=False) for c in range(10)]
        )
        scores.append(knn_score(F_train[idx], y[train][idx], F_test, y[test], n_neighbors=10))
    return np.mean(scores)


table = {}
for name, transform in representations.items():
    F_train, F_test = transform(X[train]), transform(X[test])
    table[name] = [
        linear_probe_score(F_train, y[train], F_test, y[test]),
        few_shot_score(F_train, y[train], F_test, y[test]),
        knn_score(F_train, y[train], F_test, y[test]),
        knn_few_shot(F_train, F_test),
    ]
columns = ["linear", "linear 10-shot", "20-NN", "10-NN 10-shot"]
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
