import numpy as np
import torch

from skclusterfit import ClusterFitTransformer
from skclusterfit._inputs import check_images
from skclusterfit._networks import build_network
from skclusterfit._sources import ArrayImages, DeviceImages
from skclusterfit._targets import ClassIds, ClassProbabilities
from skclusterfit._training import infer, make_config, train


def test_soft_targets_are_learned(small_digits):
    # Class probabilities (as in distillation) train like labels: the network
    # ends up predicting the most probable class of most training images.
    X, y = small_digits
    model = ClusterFitTransformer(extractor="random", n_clusters=10, max_epochs=1).fit(X)
    source = check_images(model, X, reset=False)
    soft = np.full((len(y), 10), 0.02, dtype=np.float32)
    soft[np.arange(len(y)), y] = 0.82
    torch.manual_seed(0)
    network = build_network("cnn", source.shape, 10, *source.channel_stats())
    params = model.set_params(augmentation="none").get_params()
    history = train(
        network,
        source,
        ClassProbabilities(soft),
        config=make_config(params, epochs=8, device=torch.device("cpu"), image_shape=source.shape),
        generator=torch.Generator().manual_seed(0),
        stage="distillation",
    )
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert history[-1]["accuracy"] > 0.8


class _HeldOnDevice(ArrayImages):
    """ArrayImages that reads on the CPU through DeviceImages, as it does on a GPU."""

    def on_device(self, device):
        return DeviceImages(torch.from_numpy(self.images), self)


def _uint8_digits(X):
    return (X[:150] * (255 / 16)).round().astype(np.uint8).reshape(-1, 8, 8, 1)


def test_device_images_give_the_batches_of_the_array_they_hold(small_digits):
    images = _uint8_digits(small_digits[0])
    host = ArrayImages(images, (0.0, 255.0))
    held = DeviceImages(torch.from_numpy(images), host)
    assert host.on_device(torch.device("cpu")) is host  # no copy where arrays already are
    assert held.shape == host.shape and len(held) == len(host)
    order = np.random.RandomState(0).permutation(len(host))
    pairs = zip(host.iter_batches(64, order), held.iter_batches(64, order), strict=True)
    for (indices, a), (same, b) in pairs:
        np.testing.assert_array_equal(indices, same)
        assert torch.equal(a, b) and b.dtype == torch.float32 and b.shape[1] == 1
    np.testing.assert_array_equal(host.channel_stats(), held.channel_stats())


def test_training_from_images_held_on_the_device_repeats_training_from_the_array(small_digits):
    X, y = small_digits
    images = _uint8_digits(X)
    params = ClusterFitTransformer(batch_size=32).get_params()
    runs = []
    for source in (ArrayImages(images, (0.0, 255.0)), _HeldOnDevice(images, (0.0, 255.0))):
        torch.manual_seed(0)
        network = build_network("cnn", source.shape, 10, *source.channel_stats())
        history = train(
            network,
            source,
            ClassIds(y[:150], accuracy_of="label"),
            config=make_config(
                params, epochs=2, device=torch.device("cpu"), image_shape=source.shape
            ),
            generator=torch.Generator().manual_seed(0),
            stage="supervised",
        )
        features = infer(network, source, batch_size=64, device=torch.device("cpu"))
        runs.append(([(h["loss"], h["accuracy"]) for h in history], features))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_8_bit_batches_reach_the_device_as_uint8_and_are_scaled_there(monkeypatch, digits):
    # A quarter of the bytes of float32 cross to a GPU; the scaling runs there,
    # with the arithmetic of every other path.
    from skclusterfit import _decoding, _sources

    moved = []
    real = _sources.to_device
    monkeypatch.setattr(_sources, "to_device", lambda t, d: moved.append(t.dtype) or real(t, d))
    images = (digits[0][:20] * 15).astype(np.uint8).reshape(-1, 8, 8, 1)
    arrays = _sources.ArrayImages(images, (0.0, 255.0))
    decoder = _decoding.Decoder(list(images), "dataset", (8, 8), 1)
    dataset = _sources.StreamedImages(decoder, None, 0)
    expected = torch.from_numpy(
        images.transpose(0, 3, 1, 2).astype(np.float32) * np.float32(1 / 255)
    )
    for source in (arrays, dataset):
        _, batch = next(source.iter_batches(20, device=torch.device("cpu")))
        torch.testing.assert_close(batch, expected, rtol=0, atol=0)
    assert moved == [torch.uint8, torch.uint8]
