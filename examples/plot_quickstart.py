"""
Quick start: ClusterFit features in a scikit-learn pipeline
===========================================================

:class:`~skclusterfit.ClusterFitTransformer` learns features from images
without their labels; a classifier then learns the labels from those features.
Here both sit in one :class:`~sklearn.pipeline.Pipeline`, the design's intended
use, on scikit-learn's digits.
"""

# %%
# Fit the pipeline
# ----------------
# ``fit`` trains the extractor N_pre (a RotNet, by default), clusters its
# embeddings into ``n_clusters`` groups, trains N_cf to predict the groups, and
# fits the logistic regression on N_cf's features. Only the last step uses ``y``.
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from skclusterfit import ClusterFitTransformer
from skclusterfit.metrics import representation_report

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.33, stratify=y, random_state=0
)
pipe = Pipeline(
    [
        ("cf", ClusterFitTransformer(n_clusters=50, random_state=0)),
        ("clf", LogisticRegression(max_iter=2000)),
    ]
)
pipe.fit(X_train, y_train)
print(f"Test accuracy: {pipe.score(X_test, y_test):.3f}")

# %%
# What the transformer learned
# ----------------------------
cf = pipe.named_steps["cf"]
print(
    f"images {cf.image_shape_}, {cf.n_clusters_} clusters ({cf.clusterer_}), "
    f"{cf.get_feature_names_out().size} features per image"
)

# %%
# Where the remaining errors are
# ------------------------------
ConfusionMatrixDisplay.from_estimator(pipe, X_test, y_test, colorbar=False)
plt.title("Logistic regression on ClusterFit features")
plt.show()

# %%
# Does ClusterFit help on these digits?
# -------------------------------------
# :func:`~skclusterfit.metrics.representation_report` answers with the held-out
# labelled images: it cross-validates the same probes (linear, k-nearest
# neighbours, 10 labelled images per class) on N_cf's features, on the extractor
# N_pre's, on the two side by side, on the raw pixels and on a PCA of them, all
# on the same folds. The digits have only 64 pixels, so the PCA keeps 32
# components. Images as small and clean as these leave the raw pixels a strong
# baseline; the verdict says which
# representation won each probe, and whether its margin is larger than the
# scores' spread over the folds.
report = representation_report(cf, X_test, y_test, cv=5, pca_components=32, random_state=0)
print(report)
