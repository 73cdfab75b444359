"""Scores for clusterings and for learned features.

Features are judged as the ClusterFit paper judges them: by how well a simple
classifier trained on a labelled set reads the classes off them (a linear probe,
or a cosine k-nearest-neighbour vote), measured on held-out images.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

__all__ = [
    "adjusted_rand_score",
    "cluster_accuracy",
    "few_shot_score",
    "knn_score",
    "linear_probe_score",
    "normalized_mutual_info_score",
]


def cluster_accuracy(labels_true, labels_pred) -> float:
    """Accuracy of cluster ids after the best one-to-one matching to classes.

    The matching maximises the number of agreeing samples (Hungarian
    algorithm); clusters left unmatched count as errors.

    Parameters
    ----------
    labels_true : array-like of shape (n_samples,)
        Ground-truth classes.
    labels_pred : array-like of shape (n_samples,)
        Cluster ids.

    Returns
    -------
    accuracy : float
        In [0, 1].

    Examples
    --------
    >>> from skclusterfit.metrics import cluster_accuracy
    >>> cluster_accuracy([0, 0, 1, 1, 2], [5, 5, 3, 3, 3])
    0.8
    """
    labels_true = np.asarray(labels_true)
    labels_pred = np.asarray(labels_pred)
    if labels_true.shape != labels_pred.shape or labels_true.ndim != 1:
        raise ValueError("labels_true and labels_pred must be 1-D arrays of the same length.")
    classes, true_ids = np.unique(labels_true, return_inverse=True)
    clusters, pred_ids = np.unique(labels_pred, return_inverse=True)
    counts = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(counts, (pred_ids, true_ids), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(labels_true))


def linear_probe_score(X_train, y_train, X_test, y_test, *, C: float = 1.0) -> float:
    """Test accuracy of a linear classifier trained on frozen features.

    The probe standardises the features and fits a multinomial logistic
    regression on ``(X_train, y_train)``.

    Parameters
    ----------
    X_train, X_test : array-like of shape (n_samples, n_features)
        Features of the labelled training and the held-out images.
    y_train, y_test : array-like of shape (n_samples,)
        Their classes.
    C : float, default=1.0
        Inverse regularisation strength of the logistic regression.

    Returns
    -------
    accuracy : float
        Accuracy on ``(X_test, y_test)``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit.metrics import linear_probe_score
    >>> X, y = load_digits(return_X_y=True)
    >>> linear_probe_score(X[:1000], y[:1000], X[1000:], y[1000:]) > 0.85
    True
    """
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    probe.fit(X_train, y_train)
    return float(probe.score(X_test, y_test))


def knn_score(X_train, y_train, X_test, y_test, *, n_neighbors: int = 20) -> float:
    """Test accuracy of a cosine k-nearest-neighbour vote on frozen features.

    Parameters
    ----------
    X_train, y_train, X_test, y_test
        As for :func:`linear_probe_score`.
    n_neighbors : int, default=20
        Number of neighbours that vote (20, as VISSL's k-NN benchmark).

    Returns
    -------
    accuracy : float
        Share of the held-out images whose neighbours' majority class is theirs.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit.metrics import knn_score
    >>> digits = load_digits()
    >>> score = knn_score(digits.data[:1000], digits.target[:1000],
    ...                   digits.data[1000:], digits.target[1000:])
    >>> score > 0.85
    True
    """
    knn = KNeighborsClassifier(n_neighbors=n_neighbors, metric="cosine", algorithm="brute")
    knn.fit(X_train, y_train)
    return float(knn.score(X_test, y_test))


def few_shot_score(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    n_per_class: int = 10,
    n_draws: int = 10,
    random_state=0,
) -> float:
    """Mean test accuracy of linear probes trained on a few labelled images per class.

    Each draw picks ``n_per_class`` training samples of every class at random,
    fits :func:`linear_probe_score`'s probe on them and scores it on the whole
    test set. Few-shot probes separate representations that a probe trained on
    every label finds equally good.

    Parameters
    ----------
    X_train, X_test : array-like of shape (n_samples, n_features)
        Features of the labelled pool and of the held-out images.
    y_train, y_test : array-like of shape (n_samples,)
        Their classes; every class needs ``n_per_class`` training samples.
    n_per_class : int, default=10
        Labelled samples per class in each draw.
    n_draws : int, default=10
        Number of draws averaged.
    random_state : int, RandomState instance or None, default=0
        Seeds the draws.

    Returns
    -------
    accuracy : float
        Mean accuracy over the draws.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit.metrics import few_shot_score
    >>> X, y = load_digits(return_X_y=True)
    >>> 0.7 < few_shot_score(X[:1000], y[:1000], X[1000:], y[1000:], n_per_class=5) < 1
    True
    """
    X_train, y_train = np.asarray(X_train), np.asarray(y_train)
    rng = check_random_state(random_state)
    classes = np.unique(y_train)
    scores = []
    for _ in range(n_draws):
        chosen = np.concatenate(
            [rng.choice(np.flatnonzero(y_train == c), n_per_class, replace=False) for c in classes]
        )
        scores.append(linear_probe_score(X_train[chosen], y_train[chosen], X_test, y_test))
    return float(np.mean(scores))
