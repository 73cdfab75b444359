"""Input errors: each bad input gets a clear message, raised before any training."""

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skclusterfit import ClusterFitTransformer


@pytest.mark.parametrize(
    "X, error, message",
    [
        (np.full((10, 4), np.nan), ValueError, "NaN"),
        (np.full((10, 4), np.inf), ValueError, "infinity"),
        (np.zeros((0, 4)), ValueError, "0 sample"),
        (np.zeros((1, 4)), ValueError, "1 sample"),
        (np.array([["a", "b"]] * 5, dtype=object), ValueError, "X must hold numbers"),
        (np.zeros(10), ValueError, "Expected 2D array"),
        (np.zeros((5, 2, 2, 2, 2)), ValueError, "5 dimensions"),
        (np.zeros((5, 6, 7, 8)), ValueError, "channel axis"),
        (np.zeros((5, 4), dtype=complex), ValueError, "Complex data"),
    ],
    ids=["nan", "inf", "empty", "one-sample", "strings", "1d", "5d", "no-channels", "complex"],
)
def test_bad_X_in_fit(tiny, X, error, message):
    with pytest.raises(error, match=message):
        ClusterFitTransformer(**{**tiny, "n_clusters": 2}).fit(X)


def test_image_shape_must_match_n_features(tiny):
    X = np.zeros((10, 12))
    with pytest.raises(ValueError, match=r"describes 16 values per image, but X has 12"):
        ClusterFitTransformer(**tiny, image_shape=(4, 4)).fit(X)
    with pytest.raises(ValueError, match="positive integers"):
        ClusterFitTransformer(**tiny, image_shape=(3, -4)).fit(X)


def test_transform_checks_against_fit(small_digits, tiny):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny).fit(X)
    with pytest.raises(ValueError, match="expecting 64 features"):
        cf.transform(X[:, :60])
    with pytest.raises(ValueError, match=r"fitted on images of shape \(8, 8, 1\)"):
        cf.transform(np.zeros((3, 4, 4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        cf.transform(np.full((2, 64), np.nan))


def test_n_clusters_larger_than_n_samples(tiny):
    with pytest.raises(ValueError, match="n_clusters=5 is larger than the number of samples"):
        ClusterFitTransformer(**tiny).fit(np.zeros((4, 16)))


def test_y_of_the_wrong_length(small_digits, tiny):
    X, y = small_digits
    with pytest.raises(ValueError, match="one label per sample"):
        ClusterFitTransformer(**tiny, extractor="supervised").fit(X, y[:10])


@pytest.mark.parametrize(
    "params",
    [
        dict(n_clusters=0),
        dict(clusterer="spectral"),
        dict(augmentation="heavy"),
        dict(feature_layer="conv3"),
        dict(lr_schedule="step"),
        dict(batch_size=1),
        dict(learning_rate=0.0),
        dict(image_shape="square"),
        dict(n_jobs=0),
    ],
)
def test_bad_parameters(small_digits, params):
    X, _ = small_digits
    with pytest.raises(InvalidParameterError, match=f"'{next(iter(params))}' parameter"):
        ClusterFitTransformer(**params).fit(X)


def test_feature_layer_changed_after_fit_is_checked(small_digits, tiny):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny).fit(X)
    with pytest.raises(InvalidParameterError, match="feature_layer"):
        cf.set_params(feature_layer="nope").transform(X)


def test_unknown_device(small_digits, tiny):
    X, _ = small_digits
    with pytest.raises(ValueError, match="device='gpu0'"):
        ClusterFitTransformer(**{**tiny, "device": "gpu0"}).fit(X)


def test_uint8_and_integer_inputs(rng, tiny):
    images = rng.randint(0, 256, size=(40, 100)).astype(np.uint8)
    for X in (images, images.astype(np.int64), images.astype(np.float32), images > 128):
        assert np.isfinite(ClusterFitTransformer(**tiny).fit_transform(X)).all()


def test_degenerate_data_still_fits(tiny):
    identical = np.ones((20, 64))
    with pytest.warns(UserWarning, match="found 1 non-empty clusters"):
        cf = ClusterFitTransformer(**{**tiny, "n_clusters": 2}).fit(identical)
    assert np.isfinite(cf.transform(identical)).all()
    # A batch larger than the data set.
    few = np.random.RandomState(0).rand(6, 64)
    cf = ClusterFitTransformer(**{**tiny, "n_clusters": 3, "batch_size": 512}).fit(few)
    assert cf.transform(few).shape == (6, 64 + 128 + 256)


def _labels_with_missing(y):
    pd = pytest.importorskip("pandas")
    names = np.array([f"class {k}" for k in y], dtype=object)
    return {
        "float-nan": np.where(np.arange(len(y)) == 3, np.nan, y.astype(float)),
        "none": np.where(np.arange(len(y)) == 3, None, names),
        "pandas-nan": pd.Series(names).where(np.arange(len(y)) != 3),
        "pandas-na": pd.Series(names, dtype="string").where(np.arange(len(y)) != 3),
    }


@pytest.mark.parametrize("kind", ["float-nan", "none", "pandas-nan", "pandas-na"])
def test_missing_labels_are_refused_by_the_supervised_extractor(small_digits, tiny, kind):
    X, y = small_digits
    labels = _labels_with_missing(y)[kind]
    with pytest.raises(ValueError, match="y has 1 missing labels .* the first at index 3"):
        ClusterFitTransformer(**tiny, extractor="supervised").fit(X, labels)
    # Extractors that never read y do not look at it.
    assert ClusterFitTransformer(**tiny).fit(X, labels).n_clusters_ == 5


def test_labels_of_mixed_types_and_a_single_class(small_digits, tiny):
    X, y = small_digits
    mixed = np.array([1, "one"] * 150, dtype=object)
    with pytest.raises(TypeError, match="y cannot be sorted into classes"):
        ClusterFitTransformer(**tiny, extractor="supervised").fit(X, mixed)
    with pytest.warns(UserWarning, match="y holds a single class"):
        cf = ClusterFitTransformer(**tiny, extractor="supervised").fit(X, np.zeros(len(X)))
    assert np.isfinite(cf.transform(X)).all()


@pytest.mark.parametrize("name", ["checkpoint_dir", "features_dir"])
def test_folder_parameters_naming_a_file(small_digits, tiny, tmp_path, name):
    X, _ = small_digits
    file = tmp_path / "notes.txt"
    file.write_text("not a folder")
    with pytest.raises(ValueError, match=rf"{name} must be a folder; '.*notes\.txt' is a file"):
        ClusterFitTransformer(**tiny, **{name: file}).fit(X)
    with pytest.raises(ValueError, match=rf"{name} must be a folder; .* is inside '.*notes\.txt'"):
        ClusterFitTransformer(**tiny, **{name: file / "sub"}).fit(X)


def test_lists_of_images_and_lists_that_are_not(small_digits, tiny):
    X, _ = small_digits
    images = list(X.reshape(-1, 8, 8)[:40])
    expected = ClusterFitTransformer(**tiny).fit(X[:40]).transform(X[:40])
    from_list = ClusterFitTransformer(**tiny).fit(images)
    np.testing.assert_array_equal(from_list.transform(images), expected)
    for ragged in ([X[0], X[1][:60], X[2]], ["image.png", X[0]]):
        with pytest.raises(ValueError, match="X holds items that differ in shape or kind"):
            ClusterFitTransformer(**tiny).fit(ragged)
    with pytest.raises(ValueError, match="X holds items that differ in shape or kind"):
        ClusterFitTransformer(**tiny).fit(np.array([X[0], X[1][:60]], dtype=object))
    with pytest.raises(
        TypeError, match=r"X is an iterator \(generator\), which can be read only once"
    ):
        ClusterFitTransformer(**tiny).fit(image for image in X)


@pytest.mark.parametrize("name", ["checkpoint_dir", "features_dir"])
def test_an_empty_folder_name_is_refused(small_digits, tiny, name):
    # Path("") is the current folder, which the fit would have filled.
    with pytest.raises(ValueError, match=f"{name}='' names no folder"):
        ClusterFitTransformer(**tiny, **{name: ""}).fit(small_digits[0])


@pytest.mark.parametrize(
    "device, message",
    [("meta", "holds no values"), ("mps", "device='mps' cannot be used here: ")],
)
def test_devices_this_machine_cannot_compute_on(small_digits, tiny, device, message):
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has an MPS device")
    with pytest.raises(ValueError, match=message):
        ClusterFitTransformer(**{**tiny, "device": device}).fit(small_digits[0])


def test_extractor_weights_only_for_a_torchvision_extractor(small_digits, tiny, tmp_path):
    X, _ = small_digits
    with pytest.raises(ValueError, match="but the extractor is 'rotnet'; leave extractor_weights"):
        ClusterFitTransformer(**tiny, extractor_weights=tmp_path / "w.pt").fit(X)
    text = tmp_path / "weights.txt"
    text.write_text("not weights")
    params = dict(tiny, extractor="shufflenet_v2_x0_5")
    with pytest.raises(ValueError, match=r"weights\.txt' is not a state dict written by torch"):
        ClusterFitTransformer(**params, extractor_weights=text).fit(X)
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="do not fit torchvision's 'shufflenet_v2_x0_5'"):
        ClusterFitTransformer(**params, extractor_weights=tmp_path / "other.pt").fit(X)


def test_the_alpha_channel_is_looked_for_in_every_chunk_of_rows(monkeypatch):
    from skclusterfit import _layouts

    monkeypatch.setattr(_layouts, "ROWS_PER_CHECK", 2)
    rgba = np.random.RandomState(0).randint(0, 255, (5, 8, 8, 4)).astype(np.uint8)
    rgba[..., 3] = 255
    assert _layouts.looks_like_flat_rgba(rgba.reshape(5, -1))
    rgba[4, 7, 7, 3] = 0  # one pixel of the last chunk not opaque: a grey image after all
    assert not _layouts.looks_like_flat_rgba(rgba.reshape(5, -1))
    rgba[..., 3], rgba[..., :3] = 255, 7  # nothing varies: no image to tell apart
    assert not _layouts.looks_like_flat_rgba(rgba.reshape(5, -1))
