"""Behaviour of ClusterFitTransformer as a whole: fit, transform and their outputs."""

import pickle
import tracemalloc
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skclusterfit import ClusterFitTransformer, _training, _transformer


def test_fit_transform_shapes_and_attributes(small_digits, tiny):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny).fit(X)
    features = cf.transform(X)
    # Three stages by default: blocks of 64 and 128 channels, then the pooled last.
    assert features.shape == (300, 64 + 128 + 256)
    assert features.dtype == np.float32
    assert np.isfinite(features).all()
    assert cf.image_shape_ == (8, 8, 1)
    assert cf.n_features_in_ == 64
    assert cf.labels_.shape == (300,)
    # Clustered after PCA whitening to 64 dimensions.
    assert cf.cluster_centers_.shape == (5, 64) and cf.n_clusters_ == 5
    assert set(np.unique(cf.labels_)) == set(range(5))
    # "auto" with 60 images per cluster: k-means from random centres, reported as
    # a clusterer that repeats the clustering when passed back.
    assert cf.clusterer_.init == "random" and cf.clusterer_.n_clusters == 5
    again = ClusterFitTransformer(**{**tiny, "clusterer": cf.clusterer_}).fit(X)
    np.testing.assert_array_equal(again.labels_, cf.labels_)
    assert [(h["stage"], h["epoch"]) for h in cf.history_] == [("rotnet", 1), ("clusterfit", 1)]
    for record in cf.history_:
        assert record["loss"] > 0 and 0 <= record["accuracy"] <= 1 and record["seconds"] > 0


def test_same_seed_gives_identical_features(small_digits, tiny):
    X, _ = small_digits
    first = ClusterFitTransformer(**tiny).fit_transform(X)
    second = ClusterFitTransformer(**tiny).fit_transform(X)
    np.testing.assert_array_equal(first, second)
    other = ClusterFitTransformer(**{**tiny, "random_state": 1}).fit_transform(X)
    assert not np.array_equal(first, other)


def test_fit_leaves_global_random_state_alone(small_digits, tiny):
    X, _ = small_digits
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    ClusterFitTransformer(**tiny).fit(X)
    assert torch.equal(torch_state, torch.get_rng_state())
    np.testing.assert_array_equal(numpy_state, np.random.get_state()[1])  # noqa: NPY002


def test_n_jobs_sets_threads_only_during_fit_and_transform(small_digits, tiny):
    X, _ = small_digits
    seen = []

    def extractor(images):  # records the threads torch uses where the work is done
        seen.append(torch.get_num_threads())
        return images.flatten(1)

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cf = ClusterFitTransformer(**tiny, extractor=extractor, n_jobs=2).fit(X)
        assert set(seen) == {2} and torch.get_num_threads() == 1
        seen.clear()
        cf.set_params(feature_layer="extractor").transform(X[:5])
        assert set(seen) == {2} and torch.get_num_threads() == 1
        seen.clear()
        cf.set_params(n_jobs=-1).transform(X[:5])  # -1: every core, as in joblib
        assert set(seen) == {torch.multiprocessing.cpu_count()}
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize(
    "layout",
    [
        lambda X: X.reshape(-1, 8, 8),
        lambda X: X.reshape(-1, 8, 8, 1),
        lambda X: X.reshape(-1, 1, 8, 8),
    ],
    ids=["NHW", "NHWC", "NCHW"],
)
def test_nd_inputs_match_flat_input(small_digits, tiny, layout):
    X, _ = small_digits
    flat = ClusterFitTransformer(**tiny).fit_transform(X)
    nd = ClusterFitTransformer(**tiny).fit(layout(X))
    np.testing.assert_array_equal(flat, nd.transform(layout(X)))
    assert nd.image_shape_ == (8, 8, 1) and nd.n_features_in_ == 64


def test_channels_first_and_last_colour_images_agree(rng, tiny):
    images = rng.randint(0, 256, size=(60, 8, 8, 3)).astype(np.uint8)
    last = ClusterFitTransformer(**tiny).fit_transform(images)
    first = ClusterFitTransformer(**tiny).fit_transform(images.transpose(0, 3, 1, 2).copy())
    np.testing.assert_array_equal(last, first)
    flat = ClusterFitTransformer(**tiny, image_shape=(8, 8, 3)).fit_transform(
        images.reshape(60, -1)
    )
    np.testing.assert_array_equal(last, flat)


def test_image_shape_auto(rng, tiny):
    square = ClusterFitTransformer(**tiny).fit(rng.rand(20, 16))
    assert square.image_shape_ == (4, 4, 1)
    signal = ClusterFitTransformer(**tiny).fit(rng.rand(20, 10))
    assert signal.image_shape_ == (1, 10, 1)
    assert signal.transform(rng.rand(3, 10)).shape[0] == 3


@pytest.mark.slow
def test_uint8_input_is_never_copied_to_float(tiny_net):
    # 12,000 images of 28x28: 9.4 MB as uint8, 38 MB as float32, 75 MB as float64.
    images = np.random.RandomState(0).randint(0, 256, (12_000, 784)).astype(np.uint8)
    cf = ClusterFitTransformer(
        n_clusters=2,
        architecture=tiny_net,
        max_epochs=1,
        extractor_epochs=1,
        batch_size=256,
        random_state=0,
    )
    tracemalloc.start()
    cf.fit(images)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20e6, f"peak numpy allocation {peak / 1e6:.1f} MB"
    assert cf.input_range_ == (0.0, 255.0)


@pytest.mark.parametrize(
    "layer, width",
    [("features", 448), ("logits", 5), ("extractor", 448), ("features+extractor", 896)],
)
def test_feature_layer(small_digits, tiny, layer, width):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny).fit(X)
    cf.set_params(feature_layer=layer)
    assert cf.transform(X[:7]).shape == (7, width)
    assert len(cf.get_feature_names_out()) == width


@pytest.mark.parametrize("stages", [1, 3])
def test_features_and_extractor_side_by_side_are_the_two_layers_concatenated(
    small_digits, tiny, stages
):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny, feature_stages=stages).fit(X)
    n_cf = cf.transform(X[:9])
    n_pre = cf.set_params(feature_layer="extractor").transform(X[:9])
    both = cf.set_params(feature_layer="features+extractor").transform(X[:9])
    np.testing.assert_array_equal(both, np.hstack([n_cf, n_pre]))
    assert len(cf.get_feature_names_out()) == n_cf.shape[1] + n_pre.shape[1]


def test_predict_gives_n_cf_clusters_that_match_the_pseudo_labels(small_digits):
    X, _ = small_digits
    cf = ClusterFitTransformer(
        n_clusters=5, max_epochs=15, extractor_epochs=2, augmentation="none", random_state=0
    )
    predicted = cf.fit_predict(X)
    assert predicted.dtype == np.int64 and set(predicted) <= set(range(5))
    assert np.mean(predicted == cf.labels_) > 0.9
    np.testing.assert_array_equal(cf.predict(X), predicted)
    np.testing.assert_array_equal(cf.predict(X[:7]), predicted[:7])  # image by image
    logits = cf.set_params(feature_layer="logits").transform(X)
    np.testing.assert_array_equal(logits.argmax(1), predicted)


def test_feature_names_and_pandas_output(small_digits, tiny):
    pd = pytest.importorskip("pandas")
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny).fit(X)
    names = cf.get_feature_names_out()
    assert names[0] == "clusterfittransformer0" and len(names) == 64 + 128 + 256
    frame = cf.set_output(transform="pandas").transform(X[:4])
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(names)


def test_clone_pickle_and_joblib_round_trips(small_digits, tiny, tmp_path):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny).fit(X)
    expected = cf.transform(X)
    restored = pickle.loads(pickle.dumps(cf))
    np.testing.assert_array_equal(expected, restored.transform(X))
    joblib.dump(cf, tmp_path / "cf.joblib")
    np.testing.assert_array_equal(expected, joblib.load(tmp_path / "cf.joblib").transform(X))
    fresh = clone(cf)
    assert fresh.get_params() == cf.get_params() and not hasattr(fresh, "network_")
    np.testing.assert_array_equal(expected, fresh.fit(X).transform(X))


def test_verbose(small_digits, tiny, capsys):
    X, _ = small_digits
    ClusterFitTransformer(**tiny).fit(X).transform(X)
    assert capsys.readouterr() == ("", "")
    ClusterFitTransformer(**{**tiny, "verbose": 1}).fit(X)
    err = capsys.readouterr().err
    assert "rotnet: 1 epoch in" in err and "clusterfit: 1 epoch in" in err
    assert "rotation accuracy" in err and "pseudo-label accuracy" in err
    assert "clustering: KMeans(init='random', n_clusters=5" in err and "found 5 clusters" in err


@pytest.mark.parametrize(
    "options",
    [
        dict(balanced_sampling=True),
        dict(augmentation="light"),
        dict(augmentation="none"),
        dict(lr_schedule="constant"),
        dict(pca_components=16, l2_normalize=False),
    ],
    ids=["balanced", "light", "no-augmentation", "constant-lr", "pca-no-l2"],
)
def test_options_change_the_fit(small_digits, tiny, options, monkeypatch):
    X, _ = small_digits
    tiny = {**tiny, "max_epochs": 2}
    default = ClusterFitTransformer(**tiny).fit(X)
    balanced = []
    epoch_order = _training._epoch_order

    def recording_order(indices, weights, generator):
        balanced.append(weights is not None)
        return epoch_order(indices, weights, generator)

    monkeypatch.setattr(_training, "_epoch_order", recording_order)
    cf = ClusterFitTransformer(**tiny, **options).fit(X)
    features = cf.transform(X)
    assert np.isfinite(features).all()
    assert not np.array_equal(features, default.transform(X))
    # Balanced draws for N_cf's epochs only; the extractor draws uniformly.
    assert balanced == [False] + [options.get("balanced_sampling", False)] * 2
    if "pca_components" in options:
        assert cf.cluster_centers_.shape == (5, 16)
        assert np.linalg.norm(cf.cluster_centers_, axis=1).max() > 1.5  # not normalised
    else:
        np.testing.assert_array_less(np.linalg.norm(cf.cluster_centers_, axis=1), 1 + 1e-6)


def test_training_loss_falls(small_digits):
    X, _ = small_digits
    cf = ClusterFitTransformer(
        # Unwhitened: clusters of 300 whitened embeddings take N_cf longer to learn.
        n_clusters=5,
        max_epochs=6,
        extractor_epochs=4,
        pca_components=None,
        random_state=0,
    )
    cf.fit(X)
    for stage in ("rotnet", "clusterfit"):
        losses = [h["loss"] for h in cf.history_ if h["stage"] == stage]
        assert losses[-1] < 0.8 * losses[0], (stage, losses)


def _failing_extractor(images):
    raise RuntimeError("the extractor failed")


def _fail_during_training(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("failure", ["extractor", "checkpoint", "interrupted"])
def test_a_failed_fit_leaves_the_estimator_as_it_was(
    small_digits, tiny, tmp_path, monkeypatch, failure
):
    X, _ = small_digits
    # Other images (10x10 colour, another value range), checked and laid out before the failure.
    other = np.random.RandomState(0).rand(40, 10, 10, 3) * 7
    cf = ClusterFitTransformer(**tiny).fit(X)
    state = {name: value for name, value in vars(cf).items() if name.endswith("_")}
    expected = cf.transform(X)
    fresh = ClusterFitTransformer(**tiny)
    error = {"extractor": RuntimeError, "checkpoint": ValueError}.get(failure, KeyboardInterrupt)
    if failure == "extractor":
        params = dict(extractor=_failing_extractor)
    elif failure == "checkpoint":  # a damaged checkpoint is refused
        ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(other)
        for path in tmp_path.glob("rotnet-*.pt"):
            path.write_bytes(b"damaged")
        params = dict(checkpoint_dir=tmp_path)
    else:  # interrupted while N_cf trains, after the extractor
        params = {}
        monkeypatch.setattr(_transformer, "train", _fail_during_training)
    for model in (cf, fresh):
        model.set_params(**params)
        with pytest.raises(error):
            model.fit(other)
    after = {name: value for name, value in vars(cf).items() if name.endswith("_")}
    assert after.keys() == state.keys() and all(after[name] is state[name] for name in state)
    assert cf.image_shape_ == (8, 8, 1) and cf.n_features_in_ == 64
    assert cf.input_range_ == (0.0, 16.0)
    np.testing.assert_array_equal(cf.transform(X), expected)
    with pytest.raises(NotFittedError):
        check_is_fitted(fresh)
    assert not [name for name in vars(fresh) if name.endswith("_")]


@pytest.mark.parametrize(
    "shape, advice",
    [
        ((30, 3072), r"rows of 3072 values.* pass image_shape=\(32, 32, 3\)"),
        ((30, 192), r"rows of 192 values.* pass image_shape=\(8, 8, 3\)"),
        ((30, 1024, 3), r"reshape it to \(30, 32, 32, 3\)"),
        ((30, 4, 100), r"reshape it to \(30, 4, 10, 10\)"),
    ],
)
def test_flattened_colour_images_are_pointed_out(tiny, shape, advice):
    X = np.random.RandomState(0).rand(*shape)
    with pytest.warns(UserWarning, match=advice) as record:
        ClusterFitTransformer(**{**tiny, "n_clusters": 2}, architecture="cnn").fit(X)
    assert record[0].filename == __file__


def test_flattened_rgba_images_are_pointed_out(tiny):
    # 4 * 16 * 16 values are also 32x32 grey pixels; an opaque alpha channel tells.
    rgba = np.random.RandomState(0).rand(30, 16, 16, 4)
    rgba[..., 3] = 1.0
    X = rgba.reshape(30, -1)
    advice = r"rows of 1024 values.* 32x32 grey .* pass image_shape=\(16, 16, 4\)"
    with pytest.warns(UserWarning, match=advice) as record:
        ClusterFitTransformer(**{**tiny, "n_clusters": 2}, architecture="cnn").fit(X)
    assert record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cf = ClusterFitTransformer(
            **{**tiny, "n_clusters": 2}, image_shape=(16, 16, 4), architecture="cnn"
        ).fit(X)
    assert cf.image_shape_ == (16, 16, 4)


@pytest.mark.parametrize(
    "shape, image_shape",
    [
        ((30, 64), "auto"),  # the 8x8 digits
        ((30, 784), "auto"),  # 28x28 MNIST
        ("digits_32", "auto"),  # 32x32 grey strokes on a blank background
        ("digits_32_bool", "auto"),  # the same, thresholded: bool pixels
        ((30, 48), (1, 48)),  # a table read as signals, said so
        ((30, 30), (1, 30)),
        ((30, 3072), (1, 3072)),  # signals, said so
        ((30, 3072), (32, 32, 3)),
    ],
)
def test_grey_images_tables_and_explicit_shapes_are_not_warned_about(
    small_digits, tiny, shape, image_shape
):
    if isinstance(shape, str):  # 4 * 16 * 16 values: the digits blown up to 32x32
        digits = small_digits[0][:30].reshape(30, 8, 8)
        X = np.kron(digits, np.ones((1, 4, 4))).reshape(30, -1)
        X = X > 8 if shape.endswith("bool") else X
    else:
        X = np.random.RandomState(0).rand(*shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ClusterFitTransformer(
            **{**tiny, "n_clusters": 2}, image_shape=image_shape, architecture="cnn"
        ).fit(X)


def test_one_cluster_is_accepted_with_a_warning(small_digits, tiny, capsys):
    # As KMeans accepts it; N_cf then learns a single class, whose loss is zero.
    X, _ = small_digits
    params = {**tiny, "n_clusters": 1, "balanced_sampling": True, "verbose": 1}
    with pytest.warns(UserWarning, match="n_clusters=1 .* nothing to learn") as record:
        cf = ClusterFitTransformer(**params).fit(X)
    assert record[0].filename == __file__
    assert cf.n_clusters_ == 1 and set(cf.labels_) == {0}
    assert cf.cluster_centers_.shape == (1, 64)
    [last] = [h for h in cf.history_ if h["stage"] == "clusterfit"]
    assert last["loss"] == 0.0 and last["accuracy"] == 1.0
    assert "clusterfit: 1 epoch in" in capsys.readouterr().err
    features = cf.transform(X)
    assert features.shape == (300, 64 + 128 + 256) and np.isfinite(features).all()
    assert cf.set_params(feature_layer="logits").transform(X).shape == (300, 1)
    np.testing.assert_array_equal(cf.predict(X), np.zeros(300, dtype=np.int64))


def test_predict_before_fit_says_not_fitted(small_digits):
    X, _ = small_digits
    with pytest.raises(NotFittedError):
        ClusterFitTransformer().predict(X)


@pytest.mark.parametrize("layer", ["features", "extractor"])
def test_feature_stages_add_earlier_stages_before_the_features(small_digits, tiny, layer):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny, feature_layer=layer, feature_stages=1).fit(X)
    one = cf.transform(X[:9])
    assert one.shape == (9, 256)
    # 8x8 digits: blocks at 8, 4 and 2 pixels (32, 64 and 128 channels) before the
    # last; more stages than the network has give all it has.
    for stages, width in [(2, 128 + 256), (3, 64 + 128 + 256), (4, 480), (9, 480)]:
        more = cf.set_params(feature_stages=stages).transform(X[:9])
        assert more.shape == (9, width) and more.dtype == np.float32
        np.testing.assert_allclose(more[:, -256:], one, rtol=1e-5, atol=1e-6)
        assert len(cf.get_feature_names_out()) == width
    # No hooks left on the fitted networks: they pickle and transform as before.
    cf.set_params(feature_stages=1)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(cf)).transform(X[:9]), one)


def test_feature_stages_do_not_change_logits_or_the_fit(small_digits, tiny):
    X, _ = small_digits
    first = ClusterFitTransformer(**tiny, feature_stages=1).fit(X)
    second = ClusterFitTransformer(**tiny, feature_stages=3).fit(X)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    first.set_params(feature_layer="logits")
    second.set_params(feature_layer="logits")
    np.testing.assert_array_equal(first.transform(X[:9]), second.transform(X[:9]))
    assert len(second.get_feature_names_out()) == 5


def test_a_function_extractor_has_one_stage(small_digits, tiny):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny, extractor=lambda x: x.flatten(1)).fit(X)
    assert cf.set_params(feature_layer="extractor").transform(X[:2]).shape == (2, 64)
