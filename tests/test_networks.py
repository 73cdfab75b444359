"""Architectures, the features/head split, the training loop's augmentations."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import skclusterfit
from skclusterfit import ClusterFitTransformer
from skclusterfit._networks import (
    STEM_SIDE,
    Features,
    MultiScale,
    build_network,
    resolve_architecture,
    stage_outputs,
)
from skclusterfit._targets import ClassIds, ClassIdsPerHead, Rotations, class_ids
from skclusterfit._training import _crop_grid, _epoch_order, augment


@pytest.mark.parametrize(
    "architecture, shape, width",
    [
        ("cnn", (1, 8, 8), 256),
        ("cnn", (3, 5, 7), 256),
        ("cnn", (1, 1, 10), 256),
        ("cnn_stem", (1, 96, 96), 256),
        ("cnn_stem", (3, 64, 100), 256),
        ("cnn_stem", (1, 8, 8), 256),
        ("resnet18_small", (3, 32, 32), 512),
        ("resnet18", (1, 16, 16), 512),
    ],
)
def test_architectures_split_into_features_and_head(architecture, shape, width):
    net = build_network(architecture, shape, 7, np.zeros(shape[0]), np.ones(shape[0])).eval()
    x = torch.rand((2, *shape))
    assert net.features(x).shape == (2, width)
    assert net(x).shape == (2, 7)
    torch.testing.assert_close(net.head(net.features(x)), net(x))


@pytest.mark.parametrize(
    "shape, device, expected",
    [
        ((1, 8, 8), "cpu", "cnn"),
        ((1, 8, 8), "cuda", "cnn"),
        ((3, 32, 32), "cpu", "cnn"),
        ((1, 64, 64), "cpu", "cnn_stem"),
        ((3, 96, 200), "cpu", "cnn_stem"),
        ((1, 63, 200), "cpu", "cnn"),
        ((1, 96, 96), "cuda", "resnet18_small"),
        ((3, 32, 32), "cuda", "resnet18_small"),
        ((1, 20, 40), "cuda", "resnet18_small"),
    ],
)
def test_auto_architecture_by_size_and_device(shape, device, expected):
    assert resolve_architecture("auto", shape, torch.device(device)) == expected
    assert resolve_architecture("resnet18", shape, torch.device(device)) == "resnet18"


def test_fit_records_the_architecture_auto_built(rng, tiny):
    X = rng.randint(0, 256, (40, 32, 32, 3)).astype(np.uint8)
    cf = ClusterFitTransformer(**{**tiny, "n_clusters": 2}).fit(X)
    assert cf.architecture_ == "cnn" and cf.network_.head.in_features == 256


@pytest.mark.parametrize("side, factor", [(64, 2), (96, 4), (100, 4), (224, 9)])
def test_stem_brings_large_images_to_24_to_47_pixels(side, factor):
    net = build_network("cnn_stem", (1, side, side), 5, [0.5], [0.25]).eval()
    stem = net.body[0]
    assert stem.kernel_size == stem.stride == (factor, factor)
    sizes = []
    hook = net.body[3].register_forward_hook(lambda m, i, o: sizes.append(o.shape[2:]))
    net(torch.rand(2, 1, side, side))
    hook.remove()
    assert sizes == [(side // factor, side // factor)]  # the first block's input size
    assert STEM_SIDE == 24 and 24 <= side // factor < 48


def test_stem_fit_on_large_images_saves_and_reads_three_stages(rng, tiny, tmp_path):
    X = rng.randint(0, 256, (40, 64, 64)).astype(np.uint8)
    cf = ClusterFitTransformer(**{**tiny, "n_clusters": 2}).fit(X)
    assert cf.architecture_ == "cnn_stem"
    features = cf.transform(X[:4])
    # The stages of the compact CNN on 32x32 images, where the stem brings these.
    small = ClusterFitTransformer(**{**tiny, "n_clusters": 2}).fit(X[:, ::2, ::2])
    assert features.shape == (4, small.transform(X[:4, ::2, ::2]).shape[1])
    cf.save(tmp_path / "model.pt")
    loaded = skclusterfit.load(tmp_path / "model.pt")
    np.testing.assert_array_equal(loaded.transform(X[:4]), features)


def test_factory_architecture(small_digits, tiny, tiny_net):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny, architecture=tiny_net).fit(X)
    assert cf.transform(X[:3]).shape == (3, 8)


def test_factory_with_wrong_outputs_is_refused(small_digits, tiny):
    X, _ = small_digits

    def wrong(n_outputs):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, n_outputs + 1))

    with pytest.raises(ValueError, match="expected 4"):
        ClusterFitTransformer(**tiny, architecture=wrong).fit(X)
    with pytest.raises(TypeError, match="must return an nn.Module"):
        ClusterFitTransformer(**tiny, architecture=lambda n: "net").fit(X)
    with pytest.raises(ValueError, match="Unknown architecture"):
        ClusterFitTransformer(**tiny, architecture="resnet7").fit(X)


@pytest.mark.parametrize("level", ["light", "strong"])
def test_augmentations_keep_shape_and_range_and_are_seeded(level):
    images = torch.rand((16, 3, 12, 12))
    out = augment(images, level, torch.Generator().manual_seed(0))
    again = augment(images, level, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and torch.equal(out, again)
    assert out.min() >= 0 and out.max() <= 1 and not torch.equal(out, images)
    assert augment(images, "none", torch.Generator()) is images


@pytest.mark.parametrize("shape", [(10, 14), (1, 12)])
def test_crop_grid_is_affine_grids_for_axis_aligned_crops(shape):
    height, width = shape
    draws = torch.rand((4, 8), generator=torch.Generator().manual_seed(0))
    scale_x, scale_y = draws[0] - 2, draws[1] + 0.5  # flipped, and stretched
    shift_x, shift_y = draws[2] - 0.5, draws[3] - 0.5
    theta = torch.zeros((8, 2, 3))
    theta[:, 0, 0], theta[:, 0, 2] = scale_x, shift_x
    theta[:, 1, 1], theta[:, 1, 2] = scale_y, shift_y
    expected = F.affine_grid(theta, [8, 1, height, width], align_corners=False)
    grid = _crop_grid(scale_x, scale_y, shift_x, shift_y, height, width)
    torch.testing.assert_close(grid, expected, atol=1e-6, rtol=0)
    # The identity crop samples every pixel at its centre: the image itself.
    images = torch.rand((8, 1, height, width))
    ones, zeros = torch.ones(8), torch.zeros(8)
    identity = _crop_grid(ones, ones, zeros, zeros, height, width)
    torch.testing.assert_close(F.grid_sample(images, identity, align_corners=False), images)


def test_rotations():
    images = torch.arange(8.0).view(2, 1, 2, 2)
    square = Rotations(2, (1, 2, 2))
    rotated, targets = square.batch(np.arange(2), images, torch.Generator())
    assert square.n_outputs == 4
    assert rotated.shape == (8, 1, 2, 2) and targets.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    torch.testing.assert_close(rotated[2], torch.rot90(images[0], 1, (1, 2)))
    wide = Rotations(3, (1, 2, 5))
    _, targets = wide.batch(np.arange(3), torch.zeros((3, 1, 2, 5)), torch.Generator())
    assert wide.n_outputs == 2 and targets.tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("per_image", [1, 2, 3])
def test_rotations_drawn_per_image(per_image):
    images = torch.rand((50, 1, 6, 6))
    targets = Rotations(50, (1, 6, 6), per_image)
    rotated, turns = targets.batch(np.arange(50), images, torch.Generator().manual_seed(0))
    assert rotated.shape == (50 * per_image, 1, 6, 6) and targets.n_outputs == 4
    assert set(turns.tolist()) == {0, 1, 2, 3}  # every turn is drawn for some image
    # Every rotated image is one of the images turned by its target's turn.
    for image, turn in zip(rotated, turns, strict=True):
        unturned = torch.rot90(image, -int(turn), dims=(1, 2))
        assert (unturned == images).flatten(1).all(1).sum() == 1
    again = targets.batch(np.arange(50), images, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], rotated) and torch.equal(again[1], turns)


def test_balanced_sampling_draws_clusters_equally():
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10 + [-1] * 50)
    targets = ClassIds(labels)
    assert len(targets.indices) == 1000 and targets.n_outputs == 3
    order = _epoch_order(
        targets.indices, targets.sampling_weights(), torch.Generator().manual_seed(0)
    )
    counts = np.bincount(labels[order], minlength=3)
    assert np.all(np.abs(counts - 333) < 60), counts


def _pooled(module, x):
    return module(x).mean(dim=(2, 3))


def test_stages_of_the_compact_cnn_are_its_blocks():
    net = build_network("cnn", (1, 28, 28), 7, [0.5], [0.25]).eval()
    features = Features(net)
    # Blocks at 28, 14 and 7 pixels; the fourth (3x3) is what the features pool.
    assert stage_outputs(features, (1, 28, 28)) == [
        ("network.body.2", 0),
        ("network.body.6", 0),
        ("network.body.10", 0),
    ]
    x = torch.rand((3, 1, 28, 28))
    standardised = (x - net.mean) / net.std
    with torch.no_grad():
        out = MultiScale(features, (1, 28, 28), 3)(x)
        expected = torch.cat(
            [
                _pooled(net.body[:7], standardised),  # 64 channels at 14x14
                _pooled(net.body[:11], standardised),  # 128 channels at 7x7
                features(x),
            ],
            dim=1,
        )
    assert out.shape == (3, 64 + 128 + 256)
    torch.testing.assert_close(out, expected)


def test_stages_of_a_resnet_are_its_layer_groups():
    net = build_network("resnet18_small", (3, 32, 32), 7, [0.5] * 3, [0.25] * 3).eval()
    body = net.body
    x = torch.rand((2, 3, 32, 32))
    with torch.no_grad():
        out = MultiScale(Features(net), (3, 32, 32), 4)(x)
        h = body.relu(body.bn1(body.conv1((x - net.mean) / net.std)))
        groups = []
        for layer in (body.layer1, body.layer2, body.layer3):
            h = layer(h)
            groups.append(h.mean(dim=(2, 3)))
        expected = torch.cat([*groups, net.features(x)], dim=1)
    assert out.shape == (2, 64 + 128 + 256 + 512)
    torch.testing.assert_close(out, expected)


def test_stages_skip_1x1_gates_and_end_at_each_spatial_size():
    # MobileNetV3 multiplies its maps by 1x1 squeeze-and-excitation gates
    # inside a stage; they must not split it.
    net = build_network("mobilenet_v3_small", (3, 64, 64), 7, [0.5] * 3, [0.25] * 3).eval()
    features = Features(net)
    sizes = []
    hooks = [
        layer.register_forward_hook(lambda m, i, o: sizes.append(o.shape[2:]))
        for _, layer in features.named_modules()
        if not any(True for _ in layer.children())
    ]
    with torch.no_grad():
        features(torch.zeros((2, 3, 64, 64)))
    for hook in hooks:
        hook.remove()
    distinct = {tuple(s) for s in sizes if len(s) == 2 and tuple(s) != (1, 1)}
    assert len(stage_outputs(features, (3, 64, 64))) == len(distinct) - 1


def test_stages_leave_no_hooks_behind_and_stop_at_what_the_network_has():
    net = build_network("cnn", (1, 8, 8), 7, [0.5], [0.25])
    x = torch.rand((2, 1, 8, 8))
    # Blocks at 8, 4 and 2 pixels before the last, which computes at 1x1.
    assert MultiScale(Features(net), (1, 8, 8), 4)(x).shape == (2, 32 + 64 + 128 + 256)
    assert not any(m._forward_hooks for m in net.modules())
    torch.testing.assert_close(
        MultiScale(Features(net), (1, 8, 8), 9)(x), MultiScale(Features(net), (1, 8, 8), 4)(x)
    )


def test_several_heads_share_the_features():
    from skclusterfit._networks import Heads

    torch.manual_seed(0)
    net = build_network("cnn", (1, 8, 8), [3, 5, 2], np.zeros(1), np.ones(1)).eval()
    assert isinstance(net.head, Heads) and net.head.sizes == [3, 5, 2]
    assert (net.head.in_features, net.head.out_features) == (256, 10)
    x = torch.rand((4, 1, 8, 8))
    logits = net(x)
    assert logits.shape == (4, 10)
    features = net.features(x)
    for head, part in zip(net.head.heads, logits.split([3, 5, 2], dim=1), strict=True):
        torch.testing.assert_close(head(features), part)
    # The heads are the rows of one layer of all their outputs, as initialised.
    linear = nn.Linear(6, 5)
    heads = Heads(linear, [2, 3])
    torch.testing.assert_close(heads.heads[1].weight, linear.weight[2:])
    torch.testing.assert_close(heads.heads[1].bias, linear.bias[2:])
    x = torch.rand((3, 6))
    torch.testing.assert_close(heads(x), linear(x))
    with pytest.raises(ValueError, match="need a linear layer of 4 outputs"):
        Heads(linear, [2, 2])
    # A list of one is an int: a plain linear head.
    assert isinstance(build_network("cnn", (1, 8, 8), [4], [0], [1]).head, nn.Linear)


def test_factories_build_the_outputs_of_every_head(tiny_net):
    called = []

    def factory(n_outputs):
        called.append(n_outputs)
        return tiny_net(n_outputs)

    net = build_network(factory, (1, 8, 8), [4, 6], [0], [1])
    assert called == [10] and net.head.sizes == [4, 6] and net.head.in_features == 8


def test_the_loss_is_the_sum_of_the_heads_and_the_accuracy_the_first_heads():
    labels = [np.array([0, 1, 2, 1, -1, 0]), np.array([3, 0, 1, 2, 0, -1])]
    targets = ClassIdsPerHead(labels, accuracy_of="pseudo-label")
    assert targets.sizes == [3, 4] and targets.n_outputs == 7
    np.testing.assert_array_equal(targets.indices, [0, 1, 2, 3])  # assigned in both
    assert targets.accuracy_of == "first head's pseudo-label"
    images = torch.zeros((4, 1, 2, 2))
    inputs, batch = targets.batch(np.arange(4), images)
    assert inputs is images and batch.tolist() == [[0, 3], [1, 0], [2, 1], [1, 2]]
    logits = torch.randn((4, 7), generator=torch.Generator().manual_seed(0))
    expected = F.cross_entropy(logits[:, :3], batch[:, 0]) + F.cross_entropy(
        logits[:, 3:], batch[:, 1]
    )
    torch.testing.assert_close(targets.loss(logits, batch), expected)
    first = int((logits[:, :3].argmax(1) == batch[:, 0]).sum())
    assert int(targets.n_correct(logits, batch)) == first
    # Balanced sampling balances the first labelling's classes.
    np.testing.assert_allclose(targets.sampling_weights().numpy(), [1, 0.5, 1, 0.5])
    # One labelling is the ClassIds of an int n_clusters.
    assert type(class_ids(labels[:1])) is ClassIds and type(class_ids(labels)) is ClassIdsPerHead
