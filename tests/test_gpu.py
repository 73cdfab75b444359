"""On a CUDA device: every stage, and a GPU fit used, saved and resumed on the CPU.

Marked ``gpu`` and skipped where CUDA is not available; ``benchmarks/gpu_check.py``
runs them on a GPU machine.
"""

import pickle

import numpy as np
import pytest
import torch
from torch import nn

import skclusterfit
from skclusterfit import ClusterFitTransformer
from skclusterfit._checkpoints import Checkpoints
from skclusterfit._devices import resolve_precision

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture
def on_gpu(tiny):
    """Tiny settings with the default device, which is CUDA here."""
    return {**tiny, "device": "auto"}


def _device_of(module):
    return next(module.parameters()).device.type


def test_default_fit_runs_every_stage_on_the_gpu(small_digits, on_gpu):
    X, _ = small_digits
    cf = ClusterFitTransformer(**on_gpu).fit(X)
    assert _device_of(cf.network_) == "cuda" and _device_of(cf.extractor_) == "cuda"
    features = cf.transform(X)
    assert features.shape == (300, 64 + 128 + 256) and np.isfinite(features).all()
    assert set(np.unique(cf.predict(X))) <= set(range(cf.n_clusters_))


@pytest.mark.parametrize(
    "extractor",
    ["supervised", "random", "module", "callable", "previous round"],
)
def test_every_extractor_kind_runs_on_the_gpu(small_digits, on_gpu, extractor):
    X, y = small_digits
    if extractor == "module":
        extractor = nn.Sequential(nn.Flatten(), nn.Linear(64, 16))
    elif extractor == "callable":
        extractor = lambda x: x.flatten(1) * 2  # noqa: E731
    elif extractor == "previous round":
        extractor = ClusterFitTransformer(**on_gpu).fit(X).network_.features
    cf = ClusterFitTransformer(**on_gpu, extractor=extractor).fit(X, y)
    assert np.isfinite(cf.transform(X)).all()


@pytest.mark.parametrize("options", [dict(balanced_sampling=True), dict(image_shape=(4, 16))])
def test_options_run_on_the_gpu(small_digits, on_gpu, options):
    X, _ = small_digits
    assert np.isfinite(ClusterFitTransformer(**on_gpu, **options).fit_transform(X)).all()


def test_gpu_fit_is_used_on_the_cpu_after_pickle_and_save(small_digits, on_gpu, tmp_path):
    X, _ = small_digits
    cf = ClusterFitTransformer(**on_gpu).fit(X)
    expected = cf.transform(X)
    state = cf.__getstate__()
    for key in ("network_", "extractor_"):
        assert all(t.device.type == "cpu" for t in state[key].parameters())
        assert all(t.device.type == "cpu" for t in state[key].buffers())
    cf.save(tmp_path / "model.pt")
    for restored in (pickle.loads(pickle.dumps(cf)), skclusterfit.load(tmp_path / "model.pt")):
        restored.set_params(device="cpu")
        np.testing.assert_allclose(restored.transform(X), expected, rtol=1e-3, atol=1e-3)
        np.testing.assert_array_equal(restored.predict(X), cf.predict(X))


def test_gpu_checkpoints_resume_on_the_cpu(small_digits, on_gpu, tmp_path, monkeypatch):
    X, _ = small_digits
    params = {**on_gpu, "max_epochs": 3, "checkpoint_dir": tmp_path}
    save = Checkpoints.save

    def save_then_stop(self, stage, state):
        save(self, stage, state)
        if stage == "clusterfit" and state["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoints, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        ClusterFitTransformer(**params).fit(X)
    monkeypatch.undo()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without one
    resumed = ClusterFitTransformer(**params).fit(X)
    assert _device_of(resumed.network_) == "cpu"
    assert [h["epoch"] for h in resumed.history_ if h["stage"] == "clusterfit"] == [1, 2, 3]
    assert np.isfinite(resumed.transform(X)).all()


def test_auto_precision_is_bfloat16_on_gpus_that_compute_it():
    device = torch.device("cuda")
    native = torch.cuda.get_device_capability(device)[0] >= 8
    assert resolve_precision("auto", device) == (torch.bfloat16 if native else None)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_both_precisions_train_on_the_gpu(small_digits, on_gpu, precision):
    X, _ = small_digits
    cf = ClusterFitTransformer(
        **{**on_gpu, "max_epochs": 5}, precision=precision, augmentation="none"
    ).fit(X)
    losses = [h["loss"] for h in cf.history_ if h["stage"] == "clusterfit"]
    assert losses[-1] < losses[0]
    assert cf.transform(X).dtype == np.float32


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_several_clusterings_train_on_the_gpu_and_load_on_the_cpu(
    small_digits, on_gpu, precision, tmp_path
):
    X, _ = small_digits
    params = {**on_gpu, "n_clusters": [5, 8], "max_epochs": 5, "augmentation": "none"}
    cf = ClusterFitTransformer(**params, precision=precision).fit(X)
    assert _device_of(cf.network_) == "cuda" and cf.n_clusters_all_ == [5, 8]
    losses = [h["loss"] for h in cf.history_ if h["stage"] == "clusterfit"]
    assert losses[-1] < losses[0]
    logits = cf.set_params(feature_layer="logits").transform(X)
    assert logits.shape == (300, 13) and np.isfinite(logits).all()
    np.testing.assert_array_equal(cf.predict(X), logits[:, :5].argmax(1))
    cf.save(tmp_path / "model.pt")
    loaded = skclusterfit.load(tmp_path / "model.pt").set_params(device="cpu")
    # The GPU's convolutions round differently: logits of a few units agree to
    # within 0.003 on an H200.
    np.testing.assert_allclose(loaded.transform(X), logits, rtol=1e-2, atol=1e-2)
    assert loaded.n_clusters_all_ == [5, 8] and _device_of(loaded.network_) == "cpu"


def test_uint8_arrays_are_held_on_the_gpu_and_read_as_on_the_host(small_digits):
    from skclusterfit._sources import ArrayImages, DeviceImages

    images = (small_digits[0] * (255 / 16)).round().astype(np.uint8).reshape(-1, 8, 8, 1)
    host = ArrayImages(images, (0.0, 255.0))
    held = host.on_device(torch.device("cuda"))
    assert isinstance(held, DeviceImages) and held.images.is_cuda
    floats = ArrayImages(images.astype(np.float32), (0.0, 255.0))
    assert floats.on_device(torch.device("cuda")) is floats  # only uint8 is held there
    order = np.random.RandomState(0).permutation(len(host))
    pairs = zip(host.iter_batches(64, order), held.iter_batches(64, order), strict=True)
    for (_, a), (_, b) in pairs:
        assert b.is_cuda and torch.equal(a, b.cpu())


def test_small_image_files_are_enlarged_on_the_gpu_as_on_the_host(on_gpu, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_sample_images

    from skclusterfit._decoding import Decoder
    from skclusterfit._sources import StreamedImages

    paths = []
    for index in range(12):
        photo = load_sample_images().images[index % 2][: 200 + 10 * index, : 300 + 5 * index]
        paths.append(tmp_path / f"{index}.jpg")
        Image.fromarray(np.ascontiguousarray(photo)).save(paths[-1])
    cuda = torch.device("cuda")
    # Photos 0-5 have fewer pixels than 256x320 and are enlarged on the GPU; 6-11
    # are shrunk on the host.
    host = StreamedImages(Decoder(paths, "paths", (256, 320), 3), None, 0)
    for_gpu = host.on_device(cuda)
    _, expected = next(host.iter_batches(12))
    _, got = next(for_gpu.iter_batches(12, None, cuda))
    assert got.is_cuda and got.shape == expected.shape
    assert (got.cpu() - expected).abs().max() <= 1.01 / 255
    cf = ClusterFitTransformer(**{**on_gpu, "n_clusters": 3}, image_size=(256, 320)).fit(paths)
    assert np.isfinite(cf.transform(paths)).all()
