"""Inputs that would be misread or refused get words about images, pointing at the user's line."""

import builtins
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.pipeline import Pipeline
from torch.utils.data import Dataset

from skclusterfit import ClusterFitTransformer, _compat


def test_too_many_clusters_say_how_many_images_there_are(small_digits, tiny):
    X = small_digits[0][:60]
    cf = ClusterFitTransformer(**{**tiny, "n_clusters": 100})
    with pytest.raises(ValueError, match=r"X holds 60 images.*n_clusters=60 or fewer"):
        cf.fit(X)
    assert not hasattr(cf, "labels_")


def test_a_list_of_n_clusters_names_every_impossible_entry(small_digits, tiny):
    X = small_digits[0][:60]
    cf = ClusterFitTransformer(**{**tiny, "n_clusters": [10, 100, 500]})
    with pytest.raises(ValueError) as error:
        cf.fit(X)
    message = str(error.value)
    assert "n_clusters[1]=100, n_clusters[2]=500 are larger" in message
    assert "at most 60 clusters" in message and "n_clusters[0]" not in message


def test_rows_that_are_not_square_images_are_said_to_be_read_as_1xN(tiny, rng):
    X = rng.rand(100, 50)  # a table, say
    with pytest.warns(UserWarning, match=r"read.* as a 1x50 image.*image_shape") as record:
        ClusterFitTransformer(**{**tiny, "n_clusters": 2}).fit(X)
    assert len(record) == 1 and record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ClusterFitTransformer(**{**tiny, "n_clusters": 2}, image_shape=(1, 50)).fit(X)


def test_warnings_point_at_the_user_s_line_through_a_pipeline(tiny, rng):
    pipe = Pipeline([("cf", ClusterFitTransformer(**{**tiny, "n_clusters": 2}))])
    with pytest.warns(UserWarning, match="1x50 image") as record:
        pipe.fit(rng.rand(40, 50))
    assert [w.filename for w in record] == [__file__]


def test_the_warning_helper_skips_every_frame_of_the_package(monkeypatch):
    def deep(depth):  # as if called from the package, `depth` calls down
        return _compat.warn("deep") if depth == 0 else deep(depth - 1)

    monkeypatch.setattr(_compat, "_NOT_THE_CALLER", (*_compat._NOT_THE_CALLER, __file__))
    with pytest.warns(UserWarning, match="deep") as record:
        deep(4)
    assert record[0].filename != __file__  # every frame here is skipped, up to pytest's


def _write(folder, images):
    paths = []
    for index, image in enumerate(images):
        paths.append(folder / f"{index:03d}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


@pytest.fixture
def grey(digits):
    return np.round(digits[0][:40].reshape(-1, 8, 8) * (255 / 16)).astype(np.uint8)


def test_files_of_mixed_sizes_are_said_to_be_resized_once(grey, tiny, tmp_path):
    larger = [np.kron(image, np.ones((2, 2), dtype=np.uint8)) for image in grey[20:]]
    paths = _write(tmp_path, [*grey[:20], *larger])
    params = {**tiny, "n_clusters": 2, "batch_size": 16}
    with pytest.warns(UserWarning) as record:
        ClusterFitTransformer(**params).fit_transform(paths)
    resized = [w for w in record if "differ in size" in str(w.message)]
    assert len(resized) == 1 and resized[0].filename == __file__
    message = str(resized[0].message)
    assert re.search(r"image file '.*0[234]\d\.png' \(X\[\d+\]\) is 16x16 pixels", message)
    assert "resized to 8x8, the size of the first image given to fit" in message
    assert "image_size=(height, width)" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ClusterFitTransformer(**params, image_size=8).fit(paths)


def test_files_of_one_size_are_not_warned_about(grey, tiny, tmp_path):
    paths = _write(tmp_path, grey)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ClusterFitTransformer(**{**tiny, "n_clusters": 2}).fit(paths)


@pytest.mark.parametrize(
    "value, word", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")]
)
def test_nan_and_inf_are_named_by_image(small_digits, tiny, value, word):
    X = small_digits[0][:40].copy()
    X[7, 3] = value
    cf = ClusterFitTransformer(**tiny)
    pattern = rf"X\[7\] \(image 7 of X\) holds {word}.*images must hold finite pixel values"
    with pytest.raises(ValueError, match=pattern) as error:
        cf.fit(X)
    assert "HistGradientBoosting" not in str(error.value)
    with pytest.raises(ValueError, match=r"X\[2\] \(image 2 of X\)"):
        cf.fit(np.where(np.arange(40)[:, None, None] == 2, value, X.reshape(-1, 8, 8)))
    fitted = ClusterFitTransformer(**tiny).fit(small_digits[0][:40])
    with pytest.raises(ValueError, match=pattern):
        fitted.transform(X)


class _Floats(Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index]


def test_nan_in_a_dataset_image_is_named_by_item(grey, tiny):
    images = (grey / 255.0).astype(np.float32)[:, :, :, None]
    images[5, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"X\[5\] holds NaN or infinity: images must hold finite"):
        ClusterFitTransformer(**{**tiny, "n_clusters": 2}).fit(_Floats(images))


@pytest.fixture
def torchvision_built_for_another_torch(monkeypatch):
    """``import torchvision`` fails as it does beside a torch it was not built for."""
    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "torchvision" or name.startswith("torchvision."):
            raise RuntimeError("operator torchvision::nms does not exist")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing_import)


@pytest.mark.parametrize(
    "params", [dict(extractor="mobilenet_v2"), dict(architecture="resnet18_small")]
)
def test_a_torchvision_for_another_torch_is_named_with_the_fix(
    small_digits, tiny, params, torchvision_built_for_another_torch
):
    cf = ClusterFitTransformer(**{**tiny, "n_clusters": 2}, **params)
    with pytest.raises(ImportError) as error:
        cf.fit(small_digits[0][:40])
    message = str(error.value)
    assert f"does not match torch {torch.__version__}" in message
    assert "torchvision::nms does not exist" in message
    assert "python -m pip install" in message and message.count(". ") == 0


def test_the_fix_names_the_torchvision_built_for_the_installed_torch(monkeypatch):
    monkeypatch.setattr(_compat.metadata, "version", lambda name: "0.29.1")
    monkeypatch.setattr(_compat.torch, "__version__", "2.13.0+cpu")
    message = _compat._mismatch("operator torchvision::nms does not exist")
    assert message.startswith("torchvision 0.29.1 does not match torch 2.13.0+cpu")
    assert message.endswith(
        'python -m pip install "torchvision==0.28.0" '
        "--index-url https://download.pytorch.org/whl/cpu"
    )
    monkeypatch.setattr(_compat.torch, "__version__", "2.14.1")
    assert _compat._mismatch("").endswith('python -m pip install "torchvision==0.29.1"')


def test_other_runtime_errors_of_torchvision_are_left_alone(monkeypatch):
    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "torchvision":
            raise RuntimeError("something else")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing_import)
    with pytest.raises(RuntimeError, match="something else"):
        _compat.import_torchvision()
