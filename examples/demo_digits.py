"""
ClusterFit on the digits, in one command
========================================

Fits :class:`~skclusterfit.ClusterFitTransformer` on 1,200 of scikit-learn's
8x8 digit images without their labels, then judges three representations with
linear probes trained on those images' labels and scored on the 597 others:
the raw pixels, the features of the extractor N_pre (a RotNet trained on the
same images), and ClusterFit's features. "10-shot" probes see only ten labelled
images per class (mean of ten draws), where good features matter most.

Run it with ``python examples/demo_digits.py`` (under half a minute on two cores).
"""

import time

import numpy as np
from sklearn.datasets import load_digits

from skclusterfit import ClusterFitTransformer
from skclusterfit.metrics import probe_scores

X, y = load_digits(return_X_y=True)
order = np.random.RandomState(0).permutation(len(X))
train, test = order[:1200], order[1200:]

start = time.perf_counter()
cf = ClusterFitTransformer(random_state=0).fit(X[train])
fit_seconds = time.perf_counter() - start


def probes(features_train, features_test):
    """Full linear probe, and the mean 10-shot probe over ten draws."""
    scores = probe_scores(
        features_train,
        y[train],
        features_test,
        y[test],
        probes=("linear", "few_shot"),
        random_state=0,
    )
    return scores["linear"], scores["few_shot"]


rows = {"raw pixels": probes(X[train], X[test])}
cf.set_params(feature_layer="extractor")
rows["N_pre (RotNet) features"] = probes(cf.transform(X[train]), cf.transform(X[test]))
cf.set_params(feature_layer="features")
rows["ClusterFit features"] = probes(cf.transform(X[train]), cf.transform(X[test]))

print(
    f"ClusterFit fitted on {len(train)} unlabelled digits in {fit_seconds:.0f}s "
    f"({cf.n_clusters_} clusters); probes scored on {len(test)} others.\n"
)
print(f"{'representation':<26}{'linear probe':>14}{'10-shot probe':>15}")
for name, (full, few) in rows.items():
    print(f"{name:<26}{full:>14.3f}{few:>15.3f}")
