"""
Choosing the number of clusters from cheap signals
==================================================

A grid search over ``n_clusters`` (see
:ref:`sphx_glr_auto_examples_plot_grid_search_k.py`) fits the whole pipeline
once per K and fold. Two signals are cheaper, and read a fitted
:class:`~skclusterfit.ClusterFitTransformer` directly:

- how evenly the images spread over the clusters, from ``labels_``: the
  entropy of the cluster sizes, divided by its largest value ``log(K)``, is 1
  when every cluster holds as many images and falls when a few clusters take
  most images while others hold one or two;
- the in-domain probe of :func:`skclusterfit.metrics.representation_report`
  on a small labelled sample: how well a linear classifier reads the classes
  from N_cf's features.

To keep this quick, one RotNet extractor is trained once and shared by every
K, so that only N_cf is trained again; the settings are far smaller than the
defaults, which suit larger data.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skclusterfit import ClusterFitTransformer
from skclusterfit.metrics import representation_report

X, y = load_digits(return_X_y=True)
# The transformer learns without labels from 600 images; 600 others, with
# their labels, are the sample that judges its features.
X_fit, X_labelled, y_labelled = X[:600], X[600:1200], y[600:1200]

settings = dict(max_epochs=2, pca_components=None, random_state=0)
first = ClusterFitTransformer(n_clusters=10, extractor_epochs=2, **settings).fit(X_fit)


def size_entropy(labels, n_clusters):
    """Entropy of the cluster sizes over its largest value, log(n_clusters)."""
    sizes = np.bincount(labels[labels >= 0], minlength=n_clusters)
    shares = sizes[sizes > 0] / sizes.sum()
    return float(-(shares * np.log(shares)).sum() / np.log(n_clusters))


# %%
# One fit per K
# -------------
# ``n_clusters_`` can be smaller than the K asked for: clusters that k-means
# leaves empty are dropped (with a warning).
ks = [4, 16, 64, 256]
rows = []
for k in ks:
    cf = ClusterFitTransformer(n_clusters=k, extractor=first.extractor_, **settings).fit(X_fit)
    report = representation_report(
        cf, X_labelled, y_labelled, cv=3, probes=("linear",), pca_components=None, random_state=0
    )
    probe = np.asarray(report.scores["N_cf"]["linear"])
    rows.append((k, cf.n_clusters_, size_entropy(cf.labels_, cf.n_clusters_), probe))
    print(
        f"K={k:>3}: {cf.n_clusters_:>3} clusters kept, {len(X_fit) / cf.n_clusters_:5.1f} "
        f"images per cluster, size entropy {rows[-1][2]:.3f}, "
        f"linear probe {probe.mean():.3f} ± {probe.std():.3f}"
    )
extractor_probe = np.asarray(report.scores["N_pre"]["linear"])
print(f"N_pre (RotNet) alone: linear probe {extractor_probe.mean():.3f}")

# %%
# The signals against K
# ---------------------
# Choose a K where the probe has stopped rising and the sizes are still even;
# the probe's spread over the folds says which differences are too small to
# matter.
kept = [row[1] for row in rows]
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), sharex=True)
left.plot(kept, [row[2] for row in rows], marker="o")
left.set_ylim(0, 1.05)
left.set_ylabel("cluster-size entropy / log(K)")
right.errorbar(
    kept,
    [row[3].mean() for row in rows],
    yerr=[row[3].std() for row in rows],
    marker="o",
    capsize=3,
    label="N_cf",
)
right.axhline(extractor_probe.mean(), color="grey", linestyle="--", label="N_pre (RotNet)")
right.set_ylabel("3-fold linear probe accuracy")
right.legend()
for ax in (left, right):
    ax.set_xscale("log")
    ax.set_xticks(kept, [str(k) for k in kept])
    ax.set_xlabel("clusters kept (n_clusters_)")
fig.suptitle("Digits: cheap signals for choosing K")
fig.tight_layout()
plt.show()
