"""Stage 1: every kind of extractor, and the errors each can give."""

import os

import numpy as np
import pytest
import torch
from torch import nn

from skclusterfit import ClusterFitTransformer


def test_supervised_extractor_learns_the_labels(small_digits, tiny):
    X, y = small_digits
    cf = ClusterFitTransformer(**{**tiny, "extractor_epochs": 5}, extractor="supervised").fit(X, y)
    stages = [h["stage"] for h in cf.history_]
    assert stages.count("supervised") == 5
    assert cf.history_[4]["accuracy"] > 0.5


def test_supervised_extractor_needs_y(small_digits, tiny):
    X, _ = small_digits
    with pytest.raises(ValueError, match="pass y to fit"):
        ClusterFitTransformer(**tiny, extractor="supervised").fit(X)


def test_random_extractor_is_untrained(small_digits, tiny):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny, extractor="random").fit(X)
    assert [h["stage"] for h in cf.history_] == ["clusterfit"]


def test_user_module_is_used_frozen_and_never_mutated(small_digits, tiny):
    X, _ = small_digits
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.BatchNorm1d(12))
    module.train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    cf = ClusterFitTransformer(**tiny, extractor=module).fit(X)
    assert module.training
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert cf.extractor_ is not module
    assert cf.set_params(feature_layer="extractor").transform(X).shape == (300, 12)
    # The module sees images scaled to [0, 1].
    expected = module.eval()(torch.as_tensor(X[:3] / 16.0, dtype=torch.float32))
    np.testing.assert_allclose(cf.transform(X[:3]), expected.detach().numpy(), atol=1e-5)


def test_callable_extractor(small_digits, tiny):
    X, _ = small_digits
    calls = []

    def mean_rows(images):
        calls.append(tuple(images.shape))
        return images.mean(dim=3).flatten(1).numpy()

    cf = ClusterFitTransformer(**tiny, extractor=mean_rows).fit(X)
    assert calls[0][1:] == (1, 8, 8)
    assert cf.set_params(feature_layer="extractor").transform(X[:2]).shape == (2, 8)


def test_a_fitted_network_is_the_extractor_of_a_next_round(small_digits, tiny):
    # Iterated ClusterFit as the docs show it: round 2 clusters round 1's features.
    X, _ = small_digits
    first = ClusterFitTransformer(**tiny).fit(X)
    before = {k: v.clone() for k, v in first.network_.state_dict().items()}
    second = ClusterFitTransformer(**tiny, extractor=first.network_.features).fit(X)
    np.testing.assert_allclose(
        second.set_params(feature_layer="extractor").transform(X), first.transform(X), atol=1e-5
    )
    for key, value in first.network_.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert second.network_ is not first.network_
    # The extractor holds a frozen copy of the network as a submodule, so that it
    # moves to the fit's device and pickles from the CPU like a module would.
    copied = list(second.extractor_.modules())
    assert first.network_ not in copied and any(type(m) is type(first.network_) for m in copied)
    assert not any(p.requires_grad for p in second.extractor_.parameters())
    assert first.network_.head.weight.requires_grad


@pytest.mark.parametrize(
    "extractor, message",
    [
        (lambda images: images.sum(), "features of shape"),
        (lambda images: images[:, 0, 0, 0], "features of shape"),
        ("no_such_model", "Unknown extractor 'no_such_model'"),
    ],
)
def test_bad_extractors_are_refused(small_digits, tiny, extractor, message):
    X, _ = small_digits
    with pytest.raises(ValueError, match=message):
        ClusterFitTransformer(**tiny, extractor=extractor).fit(X)


def test_missing_torchvision_weights_name_the_file_and_folder(
    small_digits, tiny, tmp_path, monkeypatch
):
    X, _ = small_digits
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cf = ClusterFitTransformer(**tiny, extractor="mobilenet_v2")
    with pytest.raises(FileNotFoundError) as error:
        cf.fit(X)
    assert "mobilenet_v2-7ebf99e0.pth" in str(error.value)
    assert str(tmp_path / "hub" / "checkpoints") in str(error.value)


def test_torchvision_weights_from_the_local_cache(small_digits, tiny, tmp_path, monkeypatch):
    import torchvision

    X, _ = small_digits
    # A stand-in for the real file: torchvision's model, saved where its weights live.
    weights = torchvision.models.ShuffleNet_V2_X0_5_Weights.IMAGENET1K_V1
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    model = torchvision.models.shufflenet_v2_x0_5()
    torch.save(model.state_dict(), folder / os.path.basename(weights.url))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_download)

    cf = ClusterFitTransformer(**tiny, extractor="shufflenet_v2_x0_5").fit(X[:40])
    extractor = cf.set_params(feature_layer="extractor", feature_stages=1)
    assert extractor.transform(X[:2]).shape == (2, 1024)

    by_path = ClusterFitTransformer(
        **tiny,
        extractor="shufflenet_v2_x0_5",
        extractor_weights=folder / os.path.basename(weights.url),
    ).fit(X[:40])
    by_path.set_params(feature_layer="extractor", feature_stages=1)
    np.testing.assert_array_equal(cf.transform(X[:5]), by_path.transform(X[:5]))

    with pytest.raises(ValueError, match="not a weights name"):
        ClusterFitTransformer(**tiny, extractor="shufflenet_v2_x0_5", extractor_weights="NOPE").fit(
            X
        )


def _no_download(*args, **kwargs):
    raise AssertionError("a download was attempted")


@pytest.mark.parametrize("extractor", ["module", "callable"])
def test_extractor_is_probed_on_the_fit_device(small_digits, extractor):
    # The probe batch is made on the device the extractor runs on. A CPU batch
    # fed to a GPU extractor raised in every CUDA fit; the "meta" device shows
    # the same mismatch on any machine.
    from skclusterfit._extractors import fit_extractor
    from skclusterfit._inputs import check_images
    from skclusterfit._training import make_config

    X, _ = small_digits
    model = ClusterFitTransformer()
    source = check_images(model, X, reset=True)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(64, 16))
    meta = torch.device("meta")
    module, n_features, history = fit_extractor(
        linear if extractor == "module" else lambda x: linear.to(meta)(x),
        weights=None,
        source=source,
        labels=None,
        architecture="auto",
        stats=source.channel_stats(),
        config=make_config(model.get_params(), epochs=1, device=meta, image_shape=source.shape),
        generator=torch.Generator(),
    )
    assert n_features == 16 and history == []
    assert all(t.device == meta for t in module.parameters())


def test_rotnet_with_fewer_rotations_per_image_learns_the_rotations(small_digits, tiny):
    X, _ = small_digits
    settings = {**tiny, "extractor_epochs": 6, "augmentation": "none"}
    one = ClusterFitTransformer(**settings, rotations_per_image=1).fit(X)
    every = ClusterFitTransformer(**settings).fit(X)
    rotnet = [h["accuracy"] for h in one.history_ if h["stage"] == "rotnet"]
    assert rotnet[-1] > 0.6  # four classes: chance is 0.25
    assert not np.array_equal(one.transform(X), every.transform(X))
