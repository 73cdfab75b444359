"""
Choosing the number of clusters with a grid search
==================================================

The number of clusters K is ClusterFit's main knob: too few and the pseudo-labels
keep only coarse groups; too many and each cluster holds a handful of images.
Because :class:`~skclusterfit.ClusterFitTransformer` is an ordinary
scikit-learn transformer, K can be chosen by cross-validating the whole
pipeline, with the downstream classifier's accuracy as the score.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skclusterfit import ClusterFitTransformer

X, y = load_digits(return_X_y=True)
pipe = Pipeline(
    [
        ("cf", ClusterFitTransformer(max_epochs=10, extractor_epochs=5, random_state=0)),
        ("clf", LogisticRegression(max_iter=2000)),
    ]
)
ks = [5, 20, 80, 320]
search = GridSearchCV(pipe, {"cf__n_clusters": ks}, cv=2)
search.fit(X, y)
print(
    f"best K: {search.best_params_['cf__n_clusters']}, "
    f"cross-validated accuracy {search.best_score_:.3f}"
)

# %%
# Accuracy against K
# ------------------
mean = search.cv_results_["mean_test_score"]
std = search.cv_results_["std_test_score"]
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.errorbar(ks, mean, yerr=std, marker="o", capsize=3)
ax.set_xscale("log")
ax.set_xticks(ks, [str(k) for k in ks])
ax.set_xlabel("number of clusters K")
ax.set_ylabel("2-fold CV accuracy")
ax.set_title("Digits: linear classifier on ClusterFit features")
fig.tight_layout()
plt.show()

# %%
# Each K was fitted twice (two folds); the table lists the fit times too.
for k, m, t in zip(ks, mean, search.cv_results_["mean_fit_time"], strict=True):
    print(f"K={k:>4}: accuracy {m:.3f}, fit {t:.1f}s")
print(f"spread between K values: {np.ptp(mean):.3f}")
