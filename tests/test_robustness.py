"""Any input gives finite features of the documented shape, or a clear error."""

import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skclusterfit import ClusterFitTransformer

_DTYPES = [np.uint8, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_]


@st.composite
def image_sets(draw):
    n = draw(st.integers(1, 12))
    shape = draw(
        st.one_of(
            st.tuples(st.integers(1, 20)),
            st.tuples(st.integers(1, 6), st.integers(1, 6)),
            st.tuples(st.integers(1, 5), st.integers(1, 5), st.sampled_from([1, 3])),
        )
    )
    dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
    if dtype.kind == "f":
        elements = st.floats(
            allow_nan=draw(st.booleans()),
            allow_infinity=draw(st.booleans()),
            width=dtype.itemsize * 8,
        )
    else:
        elements = None
    return draw(arrays(dtype, (n, *shape), elements=elements))


def _problems(X, n_clusters: int) -> list[str]:
    """What is wrong with fitting ``n_clusters`` clusters to ``X``, as its error names it."""
    problems = []
    if X.dtype.kind == "f" and np.isnan(X).any():
        problems.append("NaN")
    if X.dtype.kind == "f" and np.isinf(X).any():
        problems.append("infinity")
    if len(X) < 2:
        problems.append("1 sample")
    elif n_clusters > len(X):
        problems.append(f"n_clusters={n_clusters} is larger than the number of samples")
    return problems


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(X=image_sets(), n_clusters=st.integers(1, 4))
def test_random_inputs_give_finite_features_or_an_error_naming_the_problem(X, n_clusters):
    cf = ClusterFitTransformer(
        n_clusters=n_clusters,
        max_epochs=1,
        extractor_epochs=1,
        batch_size=8,
        device="cpu",
        random_state=0,
    )
    problems = _problems(X, n_clusters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. fewer non-empty clusters than asked
        try:
            features = cf.fit_transform(X)
        except (ValueError, TypeError) as error:
            event(f"refused: {problems}")
            assert problems, f"valid input refused: {error}"
            assert re.search("|".join(problems), str(error)), (problems, str(error))
            return
    event("fitted")
    assert not problems, f"{problems} not refused"
    # The last stage's 256 values, after those of the earlier stages the images allow.
    assert features.shape[0] == len(X) and features.shape[1] >= 256
    assert features.shape[1] == len(cf.get_feature_names_out())
    assert features.dtype == np.float32 and np.isfinite(features).all()


def test_diverging_training_stops_with_a_clear_error(small_digits):
    X, _ = small_digits
    cf = ClusterFitTransformer(n_clusters=5, extractor_epochs=2, learning_rate=1e12, random_state=0)
    with pytest.raises(FloatingPointError, match="stage 'rotnet'.*lower learning_rate"):
        cf.fit(X)
