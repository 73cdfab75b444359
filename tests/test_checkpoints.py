"""The stage cache: interrupted fits resume, later fits reuse what they share, none uses another's.

Adapted when ``checkpoint_dir`` became a cache of every stage: the tests that
expected "belongs to a fit with other data or parameters" for a second fit in
the same folder now check that such a fit computes its own stages and ends as
it would without the folder (``_same_as_alone``).
"""

import copy
import io
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from torch import nn

from skclusterfit import ClusterFitTransformer

PARAMS = dict(
    n_clusters=5,
    extractor_epochs=3,
    max_epochs=60,
    batch_size=32,
    n_jobs=1,
    device="cpu",
    random_state=0,
)

FIT_SCRIPT = """
import sys
from sklearn.datasets import load_digits
from skclusterfit import ClusterFitTransformer
ClusterFitTransformer(**{params}, checkpoint_dir=sys.argv[1]).fit(load_digits().data[:300])
"""


def _saved_epoch(path):
    record = torch.load(path, weights_only=True)
    return torch.load(io.BytesIO(record["payload"].numpy().tobytes()), weights_only=True)["epoch"]


def _stored(folder, stage):
    """The files of ``stage`` in ``folder``, one per key."""
    return sorted(folder.glob(f"{stage}-*.pt"))


def _same_as_alone(X, params, folder, y=None):
    """Fit with ``checkpoint_dir=folder`` and check it ends as the same fit without one."""
    cached = ClusterFitTransformer(**params, checkpoint_dir=folder).fit(X, y)
    alone = ClusterFitTransformer(**params).fit(X, y)
    np.testing.assert_array_equal(cached.transform(X), alone.transform(X))
    np.testing.assert_array_equal(cached.labels_, alone.labels_)
    return cached


@pytest.mark.slow
@pytest.mark.parametrize("n_clusters", [5, [5, 8]], ids=["one-clustering", "two-clusterings"])
def test_fit_killed_mid_training_resumes_to_the_same_features(digits, tmp_path, n_clusters):
    X = digits[0][:300]
    folder = tmp_path / "checkpoints"
    params = {**PARAMS, "n_clusters": n_clusters}
    script = FIT_SCRIPT.format(params=repr(params))
    process = subprocess.Popen([sys.executable, "-c", script, str(folder)])
    try:
        deadline = time.monotonic() + 300
        while not _stored(folder, "clusterfit"):
            assert process.poll() is None, "the fit ended before any N_cf checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        process.kill()
    killed_at = _saved_epoch(_stored(folder, "clusterfit")[0])
    assert 1 <= killed_at < params["max_epochs"]

    resumed = ClusterFitTransformer(**params, checkpoint_dir=folder).fit(X)
    reference = ClusterFitTransformer(**params).fit(X)
    np.testing.assert_array_equal(resumed.transform(X), reference.transform(X))
    for labels, expected in zip(resumed.labels_all_, reference.labels_all_, strict=True):
        np.testing.assert_array_equal(labels, expected)
    assert resumed.n_clusters_all_ == reference.n_clusters_all_
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in reference.history_]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in resumed.history_] == strip


def test_finished_checkpoints_are_reused_without_training(small_digits, tiny, tmp_path):
    X, _ = small_digits
    first = ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)
    stages = sorted(p.name.split("-")[0] for p in tmp_path.glob("*.pt"))
    assert stages == ["clusterfit", "clustering", "embeddings", "rotnet"]
    again = ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)
    np.testing.assert_array_equal(first.transform(X), again.transform(X))
    assert again.history_ == first.history_


@pytest.mark.parametrize(
    "change",
    [
        lambda X, params: (X[:-1], params),
        lambda X, params: (X + 1, params),
        lambda X, params: (X, {**params, "n_clusters": 6}),
        lambda X, params: (X, {**params, "random_state": 1}),
        lambda X, params: (X, {**params, "n_clusters": [5]}),
        lambda X, params: (X, {**params, "n_clusters": [5, 6]}),
    ],
    ids=["fewer-images", "other-values", "other-n_clusters", "other-seed", "list-of-one", "list"],
)
def test_another_fit_in_the_folder_uses_only_what_it_shares(small_digits, tiny, tmp_path, change):
    X, _ = small_digits
    ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)
    X2, params = change(X, tiny)
    _same_as_alone(X2, params, tmp_path)
    # Other images or seeds train another N_pre; other clusterings reuse it.
    reused = params["random_state"] == tiny["random_state"] and X2 is X
    assert len(_stored(tmp_path, "rotnet")) == (1 if reused else 2)


def test_checkpoints_of_several_clusterings_resume_only_the_same_list(small_digits, tiny, tmp_path):
    X, _ = small_digits
    params = {**tiny, "n_clusters": [5, 8], "checkpoint_dir": tmp_path}
    first = ClusterFitTransformer(**params).fit(X)
    # A tuple, or numpy ints, name the same clusterings: the checkpoints are reused.
    again = ClusterFitTransformer(**{**params, "n_clusters": (np.int64(5), 8)}).fit(X)
    assert again.history_ == first.history_
    for labels, expected in zip(again.labels_all_, first.labels_all_, strict=True):
        np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(again.cluster_centers_all_[1], first.cluster_centers_all_[1])
    assert repr(again.clusterer_all_) == repr(first.clusterer_all_)
    np.testing.assert_array_equal(again.transform(X), first.transform(X))
    for other in (5, [5], [8, 5], [5, 8, 5]):
        _same_as_alone(X, {**tiny, "n_clusters": other}, tmp_path)
    # An int and a list of one name the same clustering.
    assert len(_stored(tmp_path, "clustering")) == 4


def test_settings_that_do_not_change_the_result_keep_the_checkpoints(small_digits, tiny, tmp_path):
    X, _ = small_digits
    first = ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)
    files = {
        path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in tmp_path.glob("*.pt")
    }
    unchanged = dict(verbose=0, n_jobs=1, feature_layer="logits", num_workers=1)
    again = ClusterFitTransformer(
        **tiny, **unchanged, checkpoint_dir=str(tmp_path), features_dir=tmp_path / "features"
    ).fit(X)
    # Every stage was restored, not run again: the same epoch times, no file rewritten.
    assert again.history_ == first.history_
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.glob("*.pt")} == files
    again.set_params(feature_layer="features")
    np.testing.assert_array_equal(again.transform(X), first.transform(X))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_checkpoints_are_detected(small_digits, tiny, tmp_path, damage):
    X, _ = small_digits
    ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)
    (path,) = _stored(tmp_path, "rotnet")
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged"):
        ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)


def test_checkpoints_are_written_atomically(small_digits, tiny, tmp_path, monkeypatch):
    X, _ = small_digits
    ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)
    (path,) = _stored(tmp_path, "clusterfit")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        ClusterFitTransformer(**{**tiny, "max_epochs": 2}, checkpoint_dir=tmp_path / "b").fit(X)
    assert not list((tmp_path / "b").glob(".*.tmp"))
    assert path.read_bytes() == before


def test_rounds_from_different_networks_never_share_checkpoints(small_digits, tiny, tmp_path):
    # The documented second round: the extractor is a fitted network's features.
    X, _ = small_digits
    first = ClusterFitTransformer(**tiny).fit(X)
    other = ClusterFitTransformer(**{**tiny, "random_state": 1}).fit(X)
    second = ClusterFitTransformer(
        **tiny, extractor=first.network_.features, checkpoint_dir=tmp_path
    )
    second.fit(X)
    _same_as_alone(X, {**tiny, "extractor": other.network_.features}, tmp_path)
    # The same weights in another object (as in another process) resume.
    copy = pickle.loads(pickle.dumps(first))
    again = ClusterFitTransformer(**tiny, extractor=copy.network_.features, checkpoint_dir=tmp_path)
    assert again.fit(X).history_ == second.history_


def test_module_extractors_are_told_apart_by_their_weights(small_digits, tiny, tmp_path):
    X, _ = small_digits
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 8))
    ClusterFitTransformer(**tiny, extractor=module, checkpoint_dir=tmp_path).fit(X)
    ClusterFitTransformer(**tiny, extractor=copy.deepcopy(module), checkpoint_dir=tmp_path).fit(X)
    changed = copy.deepcopy(module)
    with torch.no_grad():
        changed[1].bias[0] += 1e-3
    _same_as_alone(X, {**tiny, "extractor": changed}, tmp_path)
    assert len(_stored(tmp_path, "clustering")) == 2


def _factory(width):
    def factory(n_outputs):
        return nn.Sequential(
            nn.Conv2d(1, width, 3), nn.ReLU(), nn.Flatten(), nn.Linear(width * 36, n_outputs)
        )

    return factory


def test_architecture_factories_are_told_apart_by_what_they_build(small_digits, tiny, tmp_path):
    X, _ = small_digits
    ClusterFitTransformer(**tiny, architecture=_factory(4), checkpoint_dir=tmp_path).fit(X)
    ClusterFitTransformer(**tiny, architecture=_factory(4), checkpoint_dir=tmp_path).fit(X)
    # The same name, another network: its own stages.
    _same_as_alone(X, {**tiny, "architecture": _factory(5)}, tmp_path)
    assert len(_stored(tmp_path, "rotnet")) == 2


@pytest.mark.parametrize(
    "params, culprit",
    [
        (dict(extractor=lambda images: images.flatten(1)), "extractor"),
        (dict(extractor=torch.flatten), "extractor"),
        (dict(clusterer=KMeans(init=lambda X, k, random_state: X[:k])), "clusterer.init"),
    ],
    ids=["lambda", "function", "clusterer-init"],
)
def test_callables_without_a_fingerprint_refuse_checkpoints(
    small_digits, tiny, tmp_path, params, culprit
):
    X, _ = small_digits
    cf = ClusterFitTransformer(**{**tiny, **params}, checkpoint_dir=tmp_path / "ckpt")
    with pytest.raises(ValueError, match=rf"checkpoint_dir cannot be used with this {culprit}:"):
        cf.fit(X)
    assert not (tmp_path / "ckpt").exists() and not hasattr(cf, "image_shape_")


def test_labels_count_by_value_and_only_for_the_supervised_extractor(small_digits, tiny, tmp_path):
    X, y = small_digits
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

    def labels():  # new str objects at every call, as a new process reads them
        return np.array(["".join(list(names[k])) for k in y], dtype=object)

    params = {**tiny, "extractor": "supervised", "checkpoint_dir": tmp_path / "supervised"}
    first = ClusterFitTransformer(**params).fit(X, labels())
    assert ClusterFitTransformer(**params).fit(X, labels()).history_ == first.history_
    other = labels()
    other[0] = "nine"
    _same_as_alone(X, {**tiny, "extractor": "supervised"}, params["checkpoint_dir"], other)
    assert len(_stored(params["checkpoint_dir"], "supervised")) == 2
    # RotNet never reads y: a Pipeline passing other labels resumes the same fit.
    params = {**tiny, "checkpoint_dir": tmp_path / "rotnet"}
    first = ClusterFitTransformer(**params).fit(X, y)
    assert ClusterFitTransformer(**params).fit(X, y[::-1]).history_ == first.history_


def test_a_random_state_instance_counts_by_its_state(small_digits, tiny, tmp_path):
    X, _ = small_digits
    params = {**tiny, "checkpoint_dir": tmp_path}
    seed = np.random.RandomState(0)
    first = ClusterFitTransformer(**{**params, "random_state": seed}).fit(X)
    # The same seed in a new object resumes; the used object draws other seeds.
    fresh = ClusterFitTransformer(**{**params, "random_state": np.random.RandomState(0)}).fit(X)
    assert fresh.history_ == first.history_
    used = copy.deepcopy(seed)
    again = ClusterFitTransformer(**{**params, "random_state": seed}).fit(X)
    alone = ClusterFitTransformer(**{**tiny, "random_state": used}).fit(X)
    np.testing.assert_array_equal(again.transform(X), alone.transform(X))
    assert len(_stored(tmp_path, "rotnet")) == 2


class _CountingExtractor(nn.Module):
    """A linear extractor that counts the images it is run on."""

    images_seen = 0  # on the class, since the fit runs a copy of the module

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 8)

    def forward(self, images):
        type(self).images_seen += len(images)
        return self.linear(images.flatten(1))


def test_a_resumed_fit_does_not_embed_the_images_again(small_digits, tiny, tmp_path, monkeypatch):
    X, _ = small_digits
    torch.manual_seed(0)
    extractor = _CountingExtractor()
    monkeypatch.setattr(_CountingExtractor, "images_seen", 0)
    first = ClusterFitTransformer(**tiny, extractor=extractor, checkpoint_dir=tmp_path).fit(X)
    assert _CountingExtractor.images_seen == 2 + len(X)  # a probe of two blank images, then X
    _CountingExtractor.images_seen = 0
    again = ClusterFitTransformer(**tiny, extractor=extractor, checkpoint_dir=tmp_path).fit(X)
    assert _CountingExtractor.images_seen == 2
    np.testing.assert_array_equal(again.labels_, first.labels_)
    np.testing.assert_array_equal(again.transform(X), first.transform(X))


def test_a_renamed_checkpoint_is_refused(small_digits, tiny, tmp_path):
    X, _ = small_digits
    ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)
    ClusterFitTransformer(**{**tiny, "random_state": 1}, checkpoint_dir=tmp_path / "b").fit(X)
    (mine,) = _stored(tmp_path, "clusterfit")
    (other,) = _stored(tmp_path / "b", "clusterfit")
    mine.write_bytes(other.read_bytes())  # another fit's file under this fit's name
    with pytest.raises(ValueError, match="belongs to a fit with other data or parameters"):
        ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)


def test_checkpoints_that_cannot_be_read_are_not_called_damaged(small_digits, tiny, tmp_path):
    X, _ = small_digits
    ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)
    (path,) = _stored(tmp_path, "rotnet")
    path.unlink()
    path.mkdir()  # a folder where a checkpoint should be
    with pytest.raises(IsADirectoryError):
        ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)
    path.rmdir()
    path.write_bytes(pickle.dumps({"epoch": 1}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning from torch on the way
        with pytest.raises(ValueError, match=r"rotnet-\w+\.pt is damaged and cannot be read"):
            ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)


@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),  # numpy's
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"),
    ],
)
def test_a_checkpoint_read_without_memory_is_not_called_damaged(
    small_digits, tiny, tmp_path, monkeypatch, error
):
    X, _ = small_digits
    ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)

    def out_of_memory(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch, "load", out_of_memory)
    with pytest.raises(MemoryError):
        ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)


def test_stages_of_another_auto_network_are_not_reused(rng, tiny, tmp_path, monkeypatch):
    # architecture="auto" builds resnet18_small for 32x32 images on a GPU and the
    # compact CNN on the CPU: each has stages of its own.
    import skclusterfit._transformer as transformer

    X = rng.randint(0, 256, (60, 32, 32, 3)).astype(np.uint8)
    params = {**tiny, "n_clusters": 3, "checkpoint_dir": tmp_path}
    ClusterFitTransformer(**params).fit(X)
    monkeypatch.setattr(transformer, "resolve_architecture", lambda *args: "resnet18_small")
    assert ClusterFitTransformer(**params).fit(X).architecture_ == "resnet18_small"
    assert len(_stored(tmp_path, "rotnet")) == 2


def test_a_restored_clustering_reports_the_clusterer_that_ran(digits, tiny, tmp_path, monkeypatch):
    # "auto" picks faiss for 1,797 images in 5 clusters when faiss is installed;
    # a resume reports what ran, whatever is installed when it resumes.
    import importlib.util

    pytest.importorskip("faiss")
    X, _ = digits
    first = ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)
    assert first.clusterer_ == "faiss"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    again = ClusterFitTransformer(**tiny, checkpoint_dir=tmp_path).fit(X)
    assert again.clusterer_ == "faiss"
    np.testing.assert_array_equal(again.labels_, first.labels_)
