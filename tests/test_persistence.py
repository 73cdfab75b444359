"""save() / load(): a model format that never runs code when loaded."""

import errno
import os
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.cluster import AgglomerativeClustering

import skclusterfit
from skclusterfit import ClusterFitTransformer, _persistence


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(extractor="random", architecture="resnet18_small", feature_layer="extractor"),
        dict(clusterer=AgglomerativeClustering(), image_shape=(8, 8), feature_layer="logits"),
        dict(feature_stages=3),
        dict(n_clusters=[5, 8], feature_layer="logits"),
    ],
    ids=["rotnet", "random-resnet", "sklearn-clusterer", "three-stages", "two-clusterings"],
)
def test_load_gives_identical_transform(small_digits, tiny, tmp_path, options):
    X, _ = small_digits
    cf = ClusterFitTransformer(**{**tiny, **options}).fit(X[:120])
    cf.save(tmp_path / "model.pt")
    loaded = skclusterfit.load(tmp_path / "model.pt")
    np.testing.assert_array_equal(cf.transform(X), loaded.transform(X))
    assert repr(loaded.get_params()) == repr(cf.get_params())
    np.testing.assert_array_equal(loaded.labels_, cf.labels_)
    assert loaded.history_ == cf.history_ and loaded.image_shape_ == cf.image_shape_
    assert repr(loaded.clusterer_) == repr(cf.clusterer_)
    assert list(loaded.get_feature_names_out()) == list(cf.get_feature_names_out())


def test_load_keeps_feature_names(small_digits, tiny, tmp_path):
    pd = pytest.importorskip("pandas")
    X, _ = small_digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(64)])
    cf = ClusterFitTransformer(**tiny).fit(frame)
    cf.save(tmp_path / "model.pt")
    loaded = skclusterfit.load(tmp_path / "model.pt")
    assert list(loaded.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(cf.transform(frame), loaded.transform(frame))


def test_torchvision_extractor_round_trip(small_digits, tiny, tmp_path, monkeypatch):
    import torchvision

    X, _ = small_digits
    weights_file = tmp_path / "shufflenet.pth"
    torch.save(torchvision.models.shufflenet_v2_x0_5().state_dict(), weights_file)
    cf = ClusterFitTransformer(
        **tiny, extractor="shufflenet_v2_x0_5", extractor_weights=weights_file
    ).fit(X[:40])
    cf.save(tmp_path / "model.pt")
    weights_file.unlink()  # the model file holds the weights itself
    loaded = skclusterfit.load(tmp_path / "model.pt")
    for layer in ("features", "extractor", "features+extractor"):
        cf.set_params(feature_layer=layer)
        loaded.set_params(feature_layer=layer)
        np.testing.assert_array_equal(cf.transform(X[:10]), loaded.transform(X[:10]))


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_file_that_runs_code_when_unpickled_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = _RunsCode()
    payload.marker = marker
    torch.save({"format": "skclusterfit-model", "payload": payload}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="refuses to run"):
        skclusterfit.load(tmp_path / "evil.pt")
    assert not marker.exists()
    # The payload is real: unpickled by pickle itself, it runs its command.
    pickle.loads(pickle.dumps(payload))
    assert marker.exists()


def test_other_files_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a skclusterfit model file"):
        skclusterfit.load(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(
        ValueError,
        match="not a skclusterfit model file: model files are zip archives and this is not",
    ):
        skclusterfit.load(tmp_path / "text.pt")
    np.savez(tmp_path / "arrays.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="damaged, or not a skclusterfit model file"):
        skclusterfit.load(tmp_path / "arrays.npz")
    with pytest.raises(FileNotFoundError):
        skclusterfit.load(tmp_path / "missing.pt")
    with pytest.raises(IsADirectoryError):
        skclusterfit.load(tmp_path)


@pytest.mark.parametrize("writer", ["pickle", "joblib", "legacy torch.save"])
def test_a_pickle_is_named_without_torch_advice(small_digits, tiny, tmp_path, writer):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny).fit(X[:60])
    path = tmp_path / "model.pkl"
    if writer == "pickle":
        path.write_bytes(pickle.dumps(cf))
    elif writer == "joblib":
        joblib.dump(cf, path)
    else:
        torch.save({"labels": cf.labels_}, path, _use_new_zipfile_serialization=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about pickles it is handed
        with pytest.raises(ValueError) as error:
            skclusterfit.load(path)
    message = str(error.value)
    assert "not a skclusterfit model file: it looks like a pickle" in message
    assert "only if it comes from a trusted source" in message
    assert "weights_only" not in message and "issue" not in message


def test_damaged_and_unreadable_model_files(small_digits, tiny, tmp_path, monkeypatch):
    X, _ = small_digits
    path = tmp_path / "model.pt"
    ClusterFitTransformer(**tiny).fit(X[:60]).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ValueError,
        match=r"not a skclusterfit model file: .* \(another kind of file, or a truncated one\)",
    ):
        skclusterfit.load(path)

    def unreadable(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(_persistence, "open", unreadable, raising=False)
    with pytest.raises(OSError, match="Input/output error") as error:
        skclusterfit.load(path)
    assert not isinstance(error.value, ValueError)


def test_models_holding_code_cannot_be_saved(small_digits, tiny, tmp_path):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny, extractor=lambda x: x.flatten(1)).fit(X)
    with pytest.raises(TypeError, match="Use pickle or joblib"):
        cf.save(tmp_path / "model.pt")
    cf = ClusterFitTransformer(**{**tiny, "random_state": np.random.RandomState(0)}).fit(X)
    with pytest.raises(TypeError, match="random_state"):
        cf.save(tmp_path / "model.pt")


def test_loading_a_file_from_another_version_warns(small_digits, tiny, tmp_path, monkeypatch):
    X, _ = small_digits
    ClusterFitTransformer(**tiny).fit(X).save(tmp_path / "model.pt")
    monkeypatch.setattr(skclusterfit._version, "__version__", "99.0")
    with pytest.warns(UserWarning, match="saved by skclusterfit 0.1.0; loading it with 99.0"):
        skclusterfit.load(tmp_path / "model.pt")


def test_save_names_a_missing_folder_or_a_folder_given_for_a_file(small_digits, tiny, tmp_path):
    cf = ClusterFitTransformer(**tiny).fit(small_digits[0][:60])
    with pytest.raises(FileNotFoundError, match=r"No folder to save the model in: '.*missing'"):
        cf.save(tmp_path / "missing" / "model.pt")
    with pytest.raises(IsADirectoryError, match="save.. needs a file name, not a folder"):
        cf.save(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_save_leaves_the_estimator_unchanged(small_digits, tiny, tmp_path):
    X, _ = small_digits
    cf = ClusterFitTransformer(**{**tiny, "n_clusters": [3, 5]}).fit(X)
    before = dict(vars(cf))
    cf.save(tmp_path / "model.pt")
    assert vars(cf).keys() == before.keys()
    assert all(vars(cf)[name] is value for name, value in before.items())


@pytest.mark.parametrize("n_clusters", [[5, 8, 3], (5, 8)], ids=["list", "tuple"])
def test_a_fit_of_several_clusterings_loads_with_every_one(
    small_digits, tiny, tmp_path, n_clusters
):
    X, _ = small_digits
    cf = ClusterFitTransformer(**{**tiny, "n_clusters": n_clusters}).fit(X)
    cf.save(tmp_path / "model.pt")
    loaded = skclusterfit.load(tmp_path / "model.pt")
    assert loaded.n_clusters == n_clusters and type(loaded.n_clusters) is type(n_clusters)
    assert loaded.n_clusters_all_ == cf.n_clusters_all_ and loaded.n_clusters_ == cf.n_clusters_
    assert repr(loaded.clusterer_all_) == repr(cf.clusterer_all_)
    for name in ("labels_all_", "cluster_centers_all_"):
        assert len(getattr(loaded, name)) == len(n_clusters)
        for array, expected in zip(getattr(loaded, name), getattr(cf, name), strict=True):
            np.testing.assert_array_equal(array, expected)
    np.testing.assert_array_equal(loaded.labels_, cf.labels_)
    np.testing.assert_array_equal(loaded.cluster_centers_, cf.cluster_centers_)
    np.testing.assert_array_equal(loaded.predict(X), cf.predict(X))
    np.testing.assert_array_equal(loaded.transform(X), cf.transform(X))
    for layer in ("logits", "extractor"):
        loaded.set_params(feature_layer=layer)
        np.testing.assert_array_equal(
            loaded.transform(X), cf.set_params(feature_layer=layer).transform(X)
        )
    assert loaded.set_params(feature_layer="logits").get_feature_names_out().shape == (
        sum(cf.n_clusters_all_),
    )
