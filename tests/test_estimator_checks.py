"""scikit-learn's compatibility suite, run on tiny settings, with no expected failures."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skclusterfit import ClusterFitTransformer

pytestmark = pytest.mark.slow

_TINY = dict(n_clusters=2, max_epochs=1, extractor_epochs=1, batch_size=16, device="cpu")


# Some checks set n_clusters=1, which warns that N_cf has nothing to learn.
@pytest.mark.filterwarnings("ignore:n_clusters=1 gives N_cf a single class:UserWarning")
# Their tables of 2 to 20 columns are read as 1xN images, which warns.
@pytest.mark.filterwarnings("ignore:X has rows of .* not a square number:UserWarning")
@parametrize_with_checks([ClusterFitTransformer(**_TINY, random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
