"""scikit-learn's compatibility suite, run on tiny settings."""

import pytest
from sklearn.utils.estimator_checks import (
    check_dont_overwrite_parameters,
    check_fit2d_1feature,
    check_fit2d_1sample,
    check_fit2d_predict1d,
    check_methods_subset_invariance,
    parametrize_with_checks,
)

from skclusterfit import ClusterFitTransformer

pytestmark = pytest.mark.slow

# These checks set ``n_clusters = 1`` before fitting. One cluster would give N_cf
# a single class to predict, so ClusterFitTransformer rejects it (n_clusters >= 2).
# The same checks run below on a subclass that keeps two clusters.
_SET_ONE_CLUSTER = [
    check_dont_overwrite_parameters,
    check_fit2d_predict1d,
    check_methods_subset_invariance,
    check_fit2d_1sample,
    check_fit2d_1feature,
]
_REASON = "sets n_clusters=1; ClusterFit needs at least 2 clusters (run on a subclass below)"

_TINY = dict(n_clusters=2, max_epochs=1, extractor_epochs=1, batch_size=16, device="cpu")


def _expected_failures(estimator):
    return {check.__name__: _REASON for check in _SET_ONE_CLUSTER}


@parametrize_with_checks(
    [ClusterFitTransformer(**_TINY, random_state=0)], expected_failed_checks=_expected_failures
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


class _AtLeastTwoClusters(ClusterFitTransformer):
    """ClusterFitTransformer that turns a request for one cluster into two."""

    @property
    def n_clusters(self):
        return self._n_clusters

    @n_clusters.setter
    def n_clusters(self, value):
        self._n_clusters = max(value, 2)


@pytest.mark.parametrize("check", _SET_ONE_CLUSTER, ids=lambda c: c.__name__)
def test_checks_that_ask_for_one_cluster(check):
    check("ClusterFitTransformer", _AtLeastTwoClusters(**_TINY, random_state=0))
