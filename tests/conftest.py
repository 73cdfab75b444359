import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits():
    """The 1,797 8x8 digit images shipped with scikit-learn, as (X, y)."""
    return load_digits(return_X_y=True)


@pytest.fixture(scope="session")
def small_digits(digits):
    """300 digit images, enough for behaviour that does not depend on quality."""
    X, y = digits
    return X[:300], y[:300]


@pytest.fixture(scope="session")
def auto_precision():
    """What precision="auto" resolves to on this process's CPU, to pass to fits in others.

    ``--no-native-bfloat16`` patches torch's CPU queries in this process only: a
    worker (joblib, Dask, a subprocess) would resolve "auto" by itself, so a test
    that compares its fits with this process's names the precision instead.
    """
    from skclusterfit._devices import precision_name

    return precision_name("auto", torch.device("cpu"))


@pytest.fixture(scope="session")
def fitted(small_digits):
    """A transformer fitted in a second on 300 digits, and the digits: ``(cf, X)``.

    Shared by the tests of what reads a fitted model (search, features on
    disk); a test that patches it must undo the patch (``monkeypatch``).
    """
    from skclusterfit import ClusterFitTransformer

    X = small_digits[0]
    cf = ClusterFitTransformer(
        n_clusters=5, max_epochs=1, extractor_epochs=1, device="cpu", random_state=0
    ).fit(X)
    return cf, X


@pytest.fixture
def tiny():
    """Settings that make a fit take a fraction of a second."""
    return dict(
        n_clusters=5, max_epochs=1, extractor_epochs=1, batch_size=64, device="cpu", random_state=0
    )


@pytest.fixture
def tiny_net():
    """A factory of very small networks, for tests that only need some network."""
    from torch import nn

    def factory(n_outputs):
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, n_outputs),
        )

    return factory


@pytest.fixture
def rng():
    return np.random.RandomState(0)


@pytest.fixture(scope="session")
def digit_files(digits, tmp_path_factory):
    """200 digit images written as 8x8 grey PNG files, with their uint8 pixels, (paths, X)."""
    from PIL import Image

    X = np.round(digits[0][:200] * (255 / 16)).astype(np.uint8)
    folder = tmp_path_factory.mktemp("digit_files")
    paths = [str(folder / f"{i:03d}.png") for i in range(len(X))]
    for row, path in zip(X, paths, strict=True):
        Image.fromarray(row.reshape(8, 8)).save(path)
    return paths, X
