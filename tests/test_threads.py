"""One fitted model used from several threads at once."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from skclusterfit import ClusterFitTransformer


@pytest.mark.parametrize("method", ["transform", "predict", "extractor"])
def test_a_fitted_model_serves_several_threads_at_once(small_digits, tiny, method):
    # The multi-stage features record each stage's output with hooks: every call
    # keeps its own, so threads never read or overwrite each other's.
    X = small_digits[0][:120]
    cf = ClusterFitTransformer(**tiny).fit(X).set_params(batch_size=4)
    if method == "extractor":
        cf.set_params(feature_layer="extractor")
    call = cf.predict if method == "predict" else cf.transform
    chunks = [X[i::6] for i in range(6)]
    expected = [call(chunk) for chunk in chunks]
    with ThreadPoolExecutor(6) as pool:
        for _ in range(3):
            results = list(pool.map(call, chunks))
            for result, wanted in zip(results, expected, strict=True):
                np.testing.assert_array_equal(result, wanted)
