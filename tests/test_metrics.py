"""Scores of clusterings and features."""

import numpy as np
import pytest

from skclusterfit.metrics import cluster_accuracy, knn_score, linear_probe_score


def test_cluster_accuracy_matches_clusters_to_classes():
    truth = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    assert cluster_accuracy(truth, truth) == 1.0
    assert cluster_accuracy(truth, (truth + 1) % 3) == 1.0  # renamed clusters
    assert cluster_accuracy(truth, np.zeros(8)) == 3 / 8  # one cluster matches one class
    # More clusters than classes: the unmatched ones count as errors.
    assert cluster_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == 0.5
    with pytest.raises(ValueError, match="same length"):
        cluster_accuracy([0, 1], [0, 1, 2])


def test_probes_separate_informative_from_random_features(digits):
    X, y = digits
    noise = np.random.RandomState(0).rand(*X.shape)
    train, test = slice(0, 1000), slice(1000, None)
    assert linear_probe_score(X[train], y[train], X[test], y[test]) > 0.9
    assert linear_probe_score(noise[train], y[train], noise[test], y[test]) < 0.2
    assert knn_score(X[train], y[train], X[test], y[test]) > 0.9
    assert knn_score(noise[train], y[train], noise[test], y[test]) < 0.2


def test_few_shot_score_draws_n_per_class(digits):
    from skclusterfit.metrics import few_shot_score

    X, y = digits
    five = few_shot_score(X[:1000], y[:1000], X[1000:], y[1000:], n_per_class=5, n_draws=5)
    again = few_shot_score(X[:1000], y[:1000], X[1000:], y[1000:], n_per_class=5, n_draws=5)
    thirty = few_shot_score(X[:1000], y[:1000], X[1000:], y[1000:], n_per_class=30, n_draws=5)
    assert five == again  # seeded
    assert 0.6 < five < thirty < 1.0
