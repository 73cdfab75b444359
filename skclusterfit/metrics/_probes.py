"""The probes: how well simple classifiers read classes off frozen features.

A linear probe (logistic regression on standardised features), a few-shot
linear probe (the same on a few labelled images per class, averaged over
draws) and a cosine k-nearest-neighbour vote, as the ClusterFit paper and
VISSL judge representations; :func:`probe_scores` runs any of them on one
train/test split. :func:`cluster_accuracy` scores a clustering against
classes.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

#: The probes by name, in the order tables show them.
PROBES = ("linear", "few_shot", "knn")
#: Labelled images per class in each draw of the few-shot probe.
FEW_SHOTS = 10
#: Neighbours that vote in the k-NN probe (20, as VISSL's k-NN benchmark).
NEIGHBOURS = 20


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


def knn_score(X_train, y_train, X_test, y_test, *, n_neighbors: int = NEIGHBOURS) -> float:
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
    n_per_class: int = FEW_SHOTS,
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


def probe_scores(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    probes=PROBES,
    n_per_class: int = FEW_SHOTS,
    n_draws: int = 10,
    n_neighbors: int = NEIGHBOURS,
    random_state=None,
) -> dict:
    """Accuracy of several probes trained on the same features and scored on the same test set.

    Parameters
    ----------
    X_train, X_test : array-like of shape (n_samples, n_features)
        Features of the labelled training and the held-out images.
    y_train, y_test : array-like of shape (n_samples,)
        Their classes.
    probes : str or sequence of {"linear", "few_shot", "knn"}, \
            default=("linear", "few_shot", "knn")
        The probes: ``"linear"``, :func:`linear_probe_score`; ``"few_shot"``,
        :func:`few_shot_score`; ``"knn"``, :func:`knn_score`.
    n_per_class, n_draws : int, default=10
        Labelled images per class in each few-shot draw, and the number of draws.
    n_neighbors : int, default=20
        Neighbours that vote in the k-NN probe.
    random_state : int, RandomState instance or None, default=None
        Seeds the few-shot draws; ``None`` draws anew at every call.

    Returns
    -------
    scores : dict of str to float
        Probe name -> accuracy on ``(X_test, y_test)``, in the order of ``probes``.

    See Also
    --------
    representation_report : These probes, cross-validated on several representations.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit.metrics import probe_scores
    >>> X, y = load_digits(return_X_y=True)
    >>> scores = probe_scores(X[:1000], y[:1000], X[1000:], y[1000:], random_state=0)
    >>> list(scores)
    ['linear', 'few_shot', 'knn']
    >>> all(0.7 < score <= 1 for score in scores.values())
    True
    """
    probes = check_probes(probes)
    data = (X_train, y_train, X_test, y_test)
    scores = {}
    for probe in probes:
        if probe == "linear":
            scores[probe] = linear_probe_score(*data)
        elif probe == "few_shot":
            scores[probe] = few_shot_score(
                *data, n_per_class=n_per_class, n_draws=n_draws, random_state=random_state
            )
        else:
            scores[probe] = knn_score(*data, n_neighbors=n_neighbors)
    return scores


def check_probes(probes) -> tuple:
    """``probes`` as a tuple of distinct names from :data:`PROBES`, or a ValueError."""
    probes = (probes,) if isinstance(probes, str) else tuple(probes)
    unknown = [p for p in probes if p not in PROBES]
    if unknown or not probes or len(set(probes)) != len(probes):
        raise ValueError(
            f"probes must be distinct names among {list(PROBES)}, at least one; got {probes!r}."
        )
    return probes


def probe_label(probe: str, *, n_per_class: int = FEW_SHOTS, n_neighbors: int = NEIGHBOURS) -> str:
    """How tables and result files name a probe: "linear", "10-shot", "20-NN"."""
    return {"linear": "linear", "few_shot": f"{n_per_class}-shot", "knn": f"{n_neighbors}-NN"}[
        probe
    ]
