"""
Label noise: ClusterFit recovers features from a network that memorised noise
==============================================================================

The ClusterFit paper's first finding: when the pre-trained network N_pre was
trained on labels that are partly wrong, the features of a network retrained
on k-means clusters of N_pre's embeddings transfer better than N_pre's own.

Here, in small: N_pre is trained on the digits with 0%, 50% and 75% of the
labels replaced at random, long enough and without augmentation so that it
memorises them. Its frozen features are then clustered, and a new network is
trained on the clusters with augmentation. Both are judged by a linear probe
trained on the *clean* labels of the fitting images and scored on held-out
images.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skclusterfit import ClusterFitTransformer
from skclusterfit.metrics import linear_probe_score

X, y = load_digits(return_X_y=True)
order = np.random.RandomState(0).permutation(len(X))
train, test = order[:1200], order[1200:]
rng = np.random.RandomState(0)

noise_levels = [0.0, 0.5, 0.75]
results = {"N_pre (noisy supervised)": [], "ClusterFit(N_pre)": []}
for noise in noise_levels:
    noisy = y[train].copy()
    flip = rng.rand(len(noisy)) < noise
    noisy[flip] = rng.randint(0, 10, flip.sum())

    # N_pre: trained on the noisy labels until it fits them.
    n_pre = ClusterFitTransformer(
        n_clusters=2,
        extractor="supervised",
        extractor_epochs=40,
        max_epochs=1,
        augmentation="none",
        random_state=0,
    ).fit(X[train], noisy)
    n_pre.set_params(feature_layer="extractor")
    fitted = n_pre.history_[39]["accuracy"]

    # ClusterFit from the frozen N_pre, with augmentation.
    cf = ClusterFitTransformer(n_clusters=50, extractor=n_pre.extractor_, random_state=0)
    cf.fit(X[train])

    for name, model in (("N_pre (noisy supervised)", n_pre), ("ClusterFit(N_pre)", cf)):
        score = linear_probe_score(
            model.transform(X[train]), y[train], model.transform(X[test]), y[test]
        )
        results[name].append(score)
    print(
        f"noise {noise:.0%}: N_pre fits its noisy labels to {fitted:.0%}; "
        f"probe N_pre {results['N_pre (noisy supervised)'][-1]:.3f}, "
        f"ClusterFit {results['ClusterFit(N_pre)'][-1]:.3f}"
    )

# %%
# Probe accuracy as the noise grows
# ---------------------------------
fig, ax = plt.subplots(figsize=(5, 3.5))
for name, scores in results.items():
    ax.plot([100 * n for n in noise_levels], scores, marker="o", label=name)
ax.set_xlabel("labels replaced at random (%)")
ax.set_ylabel("linear-probe accuracy (clean labels)")
ax.legend()
fig.tight_layout()
plt.show()
