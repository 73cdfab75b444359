"""Fits with an int n_clusters repeat results recorded with a fixed random_state."""

import hashlib

import numpy as np
import pytest
import torch

from skclusterfit import ClusterFitTransformer
from skclusterfit._devices import resolve_precision

# Fits of 300 digits recorded with the package at commit a57ba17, on the CPU with
# one thread (n_jobs=1). Digests are the first 16 hex digits of SHA-256.
# The defaults of then that have changed since are named.
REFERENCE_SETTINGS = dict(
    max_epochs=2,
    extractor_epochs=1,
    batch_size=64,
    device="cpu",
    n_jobs=1,
    pca_components=None,
    feature_stages=1,
)
REFERENCE_FITS = {
    "default": (
        dict(n_clusters=5, random_state=0),
        {
            "features": "362e657637a78d1b",
            "labels": "9f50b5d4db8cc3cf",
            "predict": "f8ab2237b4227133",
            "logits": "c7920246d8752a34",
            "losses": [1.0334914525349934, 1.4093884023030598, 0.9609961827596029],
            "accuracies": [0.43, 0.41, 0.6133333333333333],
            "feature_sum": 7161.422885312353,
            "bincount": [64, 78, 24, 60, 74],
        },
    ),
    "options": (
        dict(
            n_clusters=7,
            random_state=3,
            pca_components=8,
            balanced_sampling=True,
            augmentation="light",
            clusterer="kmeans",
            lr_schedule="constant",
        ),
        {
            "features": "57146ea7adfff5d4",
            "labels": "8f1ef1463782b43c",
            "predict": "9b1b47aa8c7772ba",
            "logits": "1e33777c594f5549",
            "losses": [1.0478266525268554, 1.5194286600748699, 1.1483172353108724],
            "accuracies": [0.44166666666666665, 0.38, 0.5633333333333334],
            "feature_sum": 15724.49771684713,
            "bincount": [53, 53, 59, 30, 33, 32, 40],
        },
    ),
    "supervised": (
        dict(n_clusters=4, random_state=1, extractor="supervised"),
        {
            "features": "87649d7d0e2cf4c2",
            "labels": "d2fd6a84fa7fd029",
            "predict": "934ee51cbd0f20d4",
            "logits": "af812a1cc123d5a1",
            "losses": [1.8784841283162435, 1.24884827931722, 0.7782761764526367],
            "accuracies": [0.37666666666666665, 0.4066666666666667, 0.69],
            "feature_sum": 7079.401284165237,
            "bincount": [101, 61, 91, 47],
        },
    ),
}
# The fits repeat bit for bit only with the kernels they were recorded with:
# torch 2.14.1 on a CPU torch drives with AVX512, where precision="auto" trains in
# bfloat16. Elsewhere even the labels differ (torch 2.11 on another CPU gave
# others), so the test is skipped there.
RECORDED_HERE = (
    torch.__version__ == "2.14.1+cu130"
    and torch.backends.cpu.get_cpu_capability() == "AVX512"
    and resolve_precision("auto", torch.device("cpu")) == torch.bfloat16
)
pytestmark = pytest.mark.skipif(
    not RECORDED_HERE,
    reason="reference fits were recorded with torch 2.14.1 on an AVX512 CPU with bfloat16",
)


def _digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


@pytest.mark.parametrize("name", list(REFERENCE_FITS))
def test_an_int_n_clusters_fits_as_before(digits, name):
    X, y = digits[0][:300], digits[1][:300]
    params, expected = REFERENCE_FITS[name]
    cf = ClusterFitTransformer(**{**REFERENCE_SETTINGS, **params}).fit(X, y)
    features = cf.transform(X)
    logits = cf.set_params(feature_layer="logits").transform(X)
    assert _digest(cf.labels_) == expected["labels"]
    assert np.bincount(cf.labels_).tolist() == expected["bincount"]
    assert _digest(cf.predict(X)) == expected["predict"]
    assert [h["loss"] for h in cf.history_] == expected["losses"]
    assert [h["accuracy"] for h in cf.history_] == expected["accuracies"]
    assert _digest(features) == expected["features"]
    assert _digest(logits) == expected["logits"]
    assert float(features.astype(np.float64).sum()) == expected["feature_sum"]
    assert cf.n_clusters_ == params["n_clusters"]
