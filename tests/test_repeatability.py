"""What ``random_state`` repeats: fits on the same machine and thread count, in any process."""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skclusterfit import ClusterFitTransformer


def test_a_fit_repeats_bit_for_bit_with_the_same_thread_count(small_digits, tiny):
    X, _ = small_digits
    params = {**tiny, "extractor_epochs": 2, "max_epochs": 2, "n_jobs": 1}
    first = ClusterFitTransformer(**params).fit(X).transform(X)
    np.testing.assert_array_equal(ClusterFitTransformer(**params).fit(X).transform(X), first)


def test_a_parallel_grid_search_scores_as_a_serial_one_with_n_jobs_set(
    small_digits, tiny, auto_precision
):
    # The workers of GridSearchCV(n_jobs=2) run torch with fewer threads than
    # this process; the estimator's n_jobs=1 makes every fit use one.
    X, y = small_digits
    cf = ClusterFitTransformer(**{**tiny, "n_jobs": 1, "precision": auto_precision})
    pipe = Pipeline([("cf", cf), ("clf", LogisticRegression(max_iter=1000))])
    grid = {"cf__n_clusters": [3, 5]}
    serial = GridSearchCV(pipe, grid, cv=2, refit=False, n_jobs=1).fit(X, y)
    parallel = GridSearchCV(pipe, grid, cv=2, refit=False, n_jobs=2).fit(X, y)
    for name in ("split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(parallel.cv_results_[name], serial.cv_results_[name])
