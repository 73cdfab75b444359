"""Image files and torch Datasets as inputs, streamed in batches; disk-backed features."""

import errno
import pickle
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError
from torch.utils.data import Dataset, IterableDataset

import skclusterfit
from skclusterfit import ClusterFitTransformer
from skclusterfit._clustering import cluster_each

N_IMAGES = 120


@pytest.fixture(scope="module")
def grey(digits):
    """120 digit images as uint8 (n, 8, 8)."""
    return np.round(digits[0][:N_IMAGES].reshape(-1, 8, 8) * (255 / 16)).astype(np.uint8)


@pytest.fixture(scope="module")
def grey_files(grey, tmp_path_factory):
    folder = tmp_path_factory.mktemp("grey")
    paths = [folder / f"{i}.png" for i in range(len(grey))]
    for image, path in zip(grey, paths, strict=True):
        Image.fromarray(image).save(path)
    return paths


@pytest.fixture
def params():
    return dict(
        n_clusters=3, max_epochs=1, extractor_epochs=1, batch_size=32, device="cpu", random_state=0
    )


class Images(Dataset):
    """A Dataset of (image, label) pairs, the image built by ``make`` from a uint8 array."""

    def __init__(self, images, make):
        self.images, self.make = images, make

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.make(self.images[index]), index % 10


def test_grey_files_give_what_the_same_array_gives(grey, grey_files, params):
    from_array = ClusterFitTransformer(**params).fit(grey)
    from_files = ClusterFitTransformer(**params).fit([str(p) for p in grey_files])
    assert from_files.image_shape_ == (8, 8, 1) and from_files.n_features_in_ == 64
    np.testing.assert_array_equal(from_files.labels_, from_array.labels_)
    expected = from_array.transform(grey)
    np.testing.assert_allclose(from_files.transform(grey_files), expected, atol=1e-5)
    # Files and arrays are interchangeable in transform, and a 1-D array of paths works.
    np.testing.assert_allclose(from_array.transform(np.array(grey_files)), expected, atol=1e-5)
    np.testing.assert_allclose(from_files.transform(grey.reshape(-1, 64)), expected, atol=1e-5)


def test_rgb_files(grey, tmp_path, params):
    colour = np.stack([grey, 255 - grey, grey // 2], axis=-1)
    paths = [tmp_path / f"{i}.png" for i in range(len(colour))]
    for image, path in zip(colour, paths, strict=True):
        Image.fromarray(image).save(path)
    from_files = ClusterFitTransformer(**params).fit(paths)
    from_array = ClusterFitTransformer(**params).fit(colour)
    assert from_files.image_shape_ == (8, 8, 3)
    np.testing.assert_array_equal(from_files.labels_, from_array.labels_)
    np.testing.assert_allclose(from_files.transform(paths), from_array.transform(colour), atol=1e-5)


def test_mixed_sizes_are_resized(grey, tmp_path, params):
    paths = []
    for i, image in enumerate(grey[:40]):
        side = 8 if i % 2 == 0 else 12
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image).resize((side, side)).save(paths[-1])
    first_size = ClusterFitTransformer(**params).fit(paths)
    assert first_size.image_shape_ == (8, 8, 1)
    cf = ClusterFitTransformer(**params, image_size=(10, 12)).fit(paths)
    assert cf.image_shape_ == (10, 12, 1) and cf.n_features_in_ == 120
    assert cf.transform(paths).shape == (40, 64 + 128 + 256)
    # A model fitted at 8x8 transforms files of any size, resized to 8x8.
    assert first_size.transform(paths[1::2]).shape == (20, 64 + 128 + 256)


def test_dataset_of_labelled_images(grey, params):
    reference = ClusterFitTransformer(**params).fit(grey)
    expected = reference.transform(grey)
    as_arrays = Images(grey, lambda image: image[:, :, None])
    as_pil = Images(grey, Image.fromarray)
    for dataset in (as_arrays, as_pil):
        cf = ClusterFitTransformer(**params).fit(dataset)
        np.testing.assert_array_equal(cf.labels_, reference.labels_)
        np.testing.assert_allclose(cf.transform(dataset), expected, atol=1e-5)
    # Float tensors in [0, 1], channels first, as torchvision's ToTensor gives.
    as_tensors = Images(grey, lambda image: torch.from_numpy(image[None] / 255.0))
    cf = ClusterFitTransformer(**params).fit(as_tensors)
    assert cf.image_shape_ == (8, 8, 1) and cf.input_range_ == (0.0, 1.0)
    np.testing.assert_allclose(cf.transform(as_tensors), cf.transform(grey), atol=1e-4)


def test_workers_decode_the_same_images(grey_files, params):
    cf = ClusterFitTransformer(**params).fit(grey_files)
    expected = cf.transform(grey_files)
    np.testing.assert_array_equal(cf.set_params(num_workers=2).transform(grey_files), expected)


def test_model_fitted_on_files_clones_pickles_saves_and_loads(grey_files, tmp_path, params):
    cf = ClusterFitTransformer(**params, image_size=8, features_dir=tmp_path / "f").fit(grey_files)
    expected = cf.transform(grey_files)
    assert clone(cf).get_params() == cf.get_params()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(cf)).transform(grey_files), expected)
    cf.save(tmp_path / "model.pt")
    loaded = skclusterfit.load(tmp_path / "model.pt")
    np.testing.assert_array_equal(loaded.transform(grey_files), expected)


def test_checkpoints_know_the_files(grey, tmp_path, params):
    paths = [tmp_path / f"{i}.png" for i in range(40)]
    for image, path in zip(grey, paths, strict=False):
        Image.fromarray(image).save(path)
    first = ClusterFitTransformer(**params, checkpoint_dir=tmp_path / "ckpt").fit(paths)
    again = ClusterFitTransformer(**params, checkpoint_dir=tmp_path / "ckpt").fit(paths)
    np.testing.assert_array_equal(first.labels_, again.labels_)
    Image.fromarray(grey[50]).save(paths[3])  # another image under the same name
    changed = ClusterFitTransformer(**params, checkpoint_dir=tmp_path / "ckpt").fit(paths)
    alone = ClusterFitTransformer(**params).fit(paths)
    np.testing.assert_array_equal(changed.labels_, alone.labels_)
    assert len(list((tmp_path / "ckpt").glob("rotnet-*.pt"))) == 2  # its own N_pre


def _errors(tmp_path, grey):
    good = tmp_path / "good.png"
    Image.fromarray(grey[0]).save(good)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    two_channels = Images(np.zeros((4, 8, 8, 2), np.uint8), lambda image: image)
    return [
        ([good, tmp_path / "missing.png"], FileNotFoundError, r"missing\.png' \(X\[1\]\)"),
        ([good, broken], ValueError, r"Cannot decode image file .*broken\.png' \(X\[1\]\)"),
        ([], ValueError, "empty sequence"),
        (Images([], None), ValueError, "empty Dataset"),
        (str(good), TypeError, "single path"),
        ([good], ValueError, "at least 2 images"),
        (Images(["a", "b"], lambda s: s), TypeError, r"X\[0\] is a str; a Dataset must return"),
        (Images(grey[:4], lambda im: im * 2.0), ValueError, r"X\[0\] holds float values outside"),
        (Images(grey[:4], lambda im: im.astype(np.int32)), TypeError, "dtype int32"),
        (two_channels, ValueError, "has 2 channels"),
        (Images(grey[:4], lambda im: im[None, None]), ValueError, r"X\[0\] is an array of shape"),
        ([good, tmp_path], ValueError, r"X\[1\] is a folder, not an image file"),
    ]


@pytest.mark.parametrize("case", range(12))
def test_input_errors_name_the_file_or_item(grey, tmp_path, params, case):
    X, error, message = _errors(tmp_path, grey)[case]
    with pytest.raises(error, match=message):
        ClusterFitTransformer(**{**params, "n_clusters": 2}).fit(X)


def test_errors_met_while_streaming_and_in_transform(grey, grey_files, tmp_path, params):
    class IterableImages(IterableDataset):
        def __iter__(self):
            return iter(grey)

    with pytest.raises(TypeError, match="without a length"):
        ClusterFitTransformer(**params).fit(IterableImages())
    # An item that goes bad after the first is named when it is read.
    mixed = Images(grey[:20], lambda image: image if image[0, 0] < 255 else "oops")
    grey_mixed = grey[:20].copy()
    grey_mixed[7, 0, 0] = 255
    with pytest.raises(TypeError, match=r"X\[7\] is a str"):
        ClusterFitTransformer(**params).fit(Images(grey_mixed, mixed.make))
    with pytest.raises(ValueError, match=r"image_size=9 resizes image files and Datasets only"):
        ClusterFitTransformer(**params, image_size=9).fit(grey)
    with pytest.raises(ValueError, match="image_size must be"):
        ClusterFitTransformer(**params, image_size=(8, 0)).fit(grey_files)
    for bad in (dict(image_size=0), dict(num_workers=-1), dict(features_dir=3)):
        with pytest.raises(InvalidParameterError, match=next(iter(bad))):
            ClusterFitTransformer(**params, **bad).fit(grey_files)
    rgba = ClusterFitTransformer(**params).fit(
        np.zeros((10, 4, 4, 4), np.uint8) + np.arange(10)[:, None, None, None].astype(np.uint8)
    )
    with pytest.raises(ValueError, match="fitted on images with 4 channels"):
        rgba.transform(grey_files)


@pytest.mark.parametrize("method", ["faiss", "minibatch", "auto"])
def test_features_on_disk_give_the_same_clusters(digits, tmp_path, method):
    if method == "faiss":
        pytest.importorskip("faiss")
    features = digits[0].astype(np.float32)
    on_disk = np.lib.format.open_memmap(tmp_path / "f.npy", "w+", np.float32, features.shape)
    on_disk[:] = features
    for pca in (None, 16):
        (in_memory,) = cluster_each(
            features, n_clusters=[10], clusterer=method, pca_components=pca, seed=0
        )
        (mapped,) = cluster_each(
            on_disk,
            n_clusters=[10],
            clusterer=method,
            pca_components=pca,
            l2_normalize=True,
            seed=0,
            folder=tmp_path,
        )
        np.testing.assert_array_equal(mapped.labels, in_memory.labels)
        np.testing.assert_allclose(mapped.centers, in_memory.centers, atol=1e-5)
    np.testing.assert_array_equal(on_disk, features)  # k-means restores what it centres


def test_features_dir_is_left_empty_and_changes_nothing(grey_files, tmp_path, params):
    reference = ClusterFitTransformer(**params).fit(grey_files)
    cf = ClusterFitTransformer(**params, features_dir=tmp_path / "features").fit(grey_files)
    np.testing.assert_array_equal(cf.labels_, reference.labels_)
    assert list((tmp_path / "features").iterdir()) == []


def test_faiss_trains_on_at_most_256_points_per_cluster(digits, tiny, capsys):
    pytest.importorskip("faiss")
    features = digits[0].astype(np.float32)
    sampled, every = cluster_each(features, n_clusters=[4, 10], clusterer="faiss", seed=0)
    assert sampled.n_fitted == 1024 and every.n_fitted == len(features)
    ClusterFitTransformer(**{**tiny, "n_clusters": 2}, clusterer="faiss", verbose=1).fit(
        digits[0][:600]
    )
    assert "fitted on 512 of 600 images" in capsys.readouterr().err


def test_a_decompression_bomb_is_named(grey, tmp_path, params, monkeypatch):
    from PIL import Image as PILImage

    paths = [tmp_path / f"{i}.png" for i in range(4)]
    for image, path in zip(grey, paths, strict=False):
        Image.fromarray(image).save(path)
    Image.fromarray(np.zeros((60, 60), np.uint8)).save(paths[2])
    # 3,600 pixels: more than twice this limit, so PIL refuses it as a bomb.
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1_000)
    with pytest.raises(
        ValueError,
        match=r"Cannot decode image file .*2\.png' \(X\[2\]\).*"
        r"MAX_IMAGE_PIXELS",
    ):
        ClusterFitTransformer(**{**params, "n_clusters": 2}).fit(paths)


def test_files_the_system_cannot_read_keep_their_error(grey, tmp_path, params, monkeypatch):
    from PIL import Image as PILImage

    paths = [tmp_path / f"{i}.png" for i in range(6)]
    for image, path in zip(grey, paths, strict=False):
        Image.fromarray(image).save(path)
    truncated = paths[4].read_bytes()
    paths[5].write_bytes(truncated[: len(truncated) // 2])
    with pytest.raises(ValueError, match=r"Cannot decode image file .*5\.png' \(X\[5\]\)"):
        ClusterFitTransformer(**{**params, "n_clusters": 2}).fit(paths)
    real_open = PILImage.open

    def no_permission(path, *args, **kwargs):
        if str(path).endswith("3.png"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(PILImage, "open", no_permission)
    with pytest.raises(PermissionError, match=r"Permission denied: '.*3\.png'"):
        ClusterFitTransformer(**{**params, "n_clusters": 2}).fit(paths[:5])


def test_16_bit_and_float_images_are_scaled_not_clipped(grey, tmp_path, params):
    # PIL's own conversion to 8 bits clips at 255: a 16-bit image would turn white.
    wide = grey.astype(np.uint16) * 257  # the same images on 0-65535
    paths = [tmp_path / f"{i}.png" for i in range(40)]
    for image, path in zip(wide, paths, strict=False):
        Image.fromarray(image).save(path)
    assert Image.open(paths[0]).mode.startswith("I")
    # Unwhitened: whitening 40 images' features magnifies rounding differences.
    params = {**params, "pca_components": None}
    reference = ClusterFitTransformer(**params).fit(grey[:40])
    cf = ClusterFitTransformer(**params).fit(paths)
    np.testing.assert_array_equal(cf.labels_, reference.labels_)
    np.testing.assert_allclose(cf.transform(paths), reference.transform(grey[:40]), atol=1e-4)
    floats = Images(grey[:40], lambda image: Image.fromarray(image.astype(np.float32) / 255))
    np.testing.assert_allclose(cf.transform(floats), reference.transform(grey[:40]), atol=1e-4)
    too_bright = Images(grey[:4], lambda image: Image.fromarray(image.astype(np.float32)))
    with pytest.raises(ValueError, match=r"X\[0\] holds float values outside \[0, 1\]"):
        ClusterFitTransformer(**params).fit(too_bright)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """scikit-learn's two sample photos (427x640 colour) as JPEG files."""
    from sklearn.datasets import load_sample_images

    folder = tmp_path_factory.mktemp("photos")
    paths = [folder / f"{i}.jpg" for i in range(2)]
    for photo, path in zip(load_sample_images().images, paths, strict=True):
        Image.fromarray(photo).save(path, quality=90)
    return paths


@pytest.mark.parametrize("channels", [1, 3])
def test_photos_shrunk_for_training_are_decoded_small(photos, channels):
    from skclusterfit._decoding import Decoder, _scaled, _to_pixels, read_item

    decoder = Decoder(photos, "paths", (96, 96), channels)
    drafted, own_size = read_item(photos, 0, "paths", draft=((96, 96), channels))
    # The decoder's 1/4 scale (107x160) still covers 96x96; 1/8 would not.
    assert drafted.size == (160, 107) and own_size == (427, 640)
    image, size = decoder[0]
    assert image.shape == (96, 96, channels) and size.tolist() == [427, 640]
    image = _scaled(image)
    full, _ = read_item(photos, 0, "paths")
    reference = _scaled(torch.from_numpy(_to_pixels(full, "photo", (96, 96), channels)[0]))
    # Decoding at a quarter of the size and then resizing is nearly the same
    # picture as decoding at full size and then resizing (2/255 on average).
    assert (image - reference).abs().mean() < 0.015
    whole, _ = Decoder(photos, "paths", (96, 96), channels, draft=False)[0]
    torch.testing.assert_close(_scaled(whole), reference, rtol=0, atol=0)
    # A photo smaller than twice the size is decoded at full size.
    assert read_item(photos, 0, "paths", draft=((224, 224), channels))[0].size == (640, 427)


@pytest.mark.parametrize("mode, size", [("RGB", (224, 200)), ("L", (96, 96)), ("RGB", (500, 700))])
def test_photos_are_resized_as_pil_resizes_them(photos, mode, size):
    from skclusterfit._decoding import Decoder, _scaled

    with Image.open(photos[1]) as photo:
        expected = photo.convert(mode).resize(size[::-1], Image.Resampling.BILINEAR)
    expected = np.asarray(expected, dtype=np.float32).reshape(*size, -1) / 255
    image, _ = Decoder(photos[1:], "paths", size, len(mode), draft=False)[0]
    difference = np.abs(_scaled(image).numpy() - expected)
    assert difference.max() <= 1.01 / 255 and difference.mean() < 0.1 / 255


def test_photos_at_their_own_size_are_decoded_whole(photos, params):
    from skclusterfit._decoding import Decoder, read_item

    full, _ = read_item(photos, 0, "paths")
    image, _ = Decoder(photos, "paths", (427, 640), 3)[0]
    np.testing.assert_array_equal(image.numpy(), np.asarray(full))
    cf = ClusterFitTransformer(**{**params, "n_clusters": 2, "batch_size": 2}, image_size=96)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cf.fit_transform(photos).shape[0] == 2


def test_8_bit_images_are_decoded_as_uint8_and_batched_as_floats(photos, grey):
    from skclusterfit._decoding import Decoder
    from skclusterfit._sources import ArrayImages, StreamedImages

    # Workers pass 8-bit pixels as uint8, a quarter of the bytes of floats.
    assert Decoder(photos, "paths", (96, 96), 3)[0][0].dtype == torch.uint8
    assert Decoder(photos, "paths", (96, 96), 1)[0][0].dtype == torch.uint8
    # Colour arrays made grey are weighted in floats.
    colour = np.repeat(grey[:2, :, :, None], 3, axis=3)
    assert Decoder(list(colour), "dataset", (8, 8), 1)[0][0].dtype == torch.float32
    # A batch of uint8 items is scaled exactly as the same array is; a batch
    # mixing uint8 and float items comes as floats.
    items = [image[:, :, None] for image in grey[:4]]
    expected = next(ArrayImages(grey[:4, :, :, None], (0.0, 255.0)).iter_batches(4))[1]
    for mixed in (items, [items[0], items[1] / 255.0, items[2], items[3] / 255.0]):
        _, batch = next(
            StreamedImages(Decoder(mixed, "dataset", (8, 8), 1), None, 0).iter_batches(4)
        )
        assert batch.dtype == torch.float32
        torch.testing.assert_close(batch, expected, rtol=0, atol=1e-7)
    _, batch = next(StreamedImages(Decoder(items, "dataset", (8, 8), 1), None, 0).iter_batches(4))
    torch.testing.assert_close(batch, expected, rtol=0, atol=0)


def _mixed_photos(photos, folder):
    """The two sample photos (JPEG files) and two smaller crops of them (PNG files)."""
    paths = list(photos)
    for index, (height, width) in enumerate([(300, 200), (120, 160)]):
        with Image.open(photos[index]) as photo:
            path = folder / f"crop_{index}.png"
            photo.crop((0, 0, width, height)).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("channels, num_workers", [(3, 0), (1, 0), (3, 2)])
def test_small_images_are_enlarged_on_the_device_as_on_the_host(
    photos, tmp_path, channels, num_workers
):
    from skclusterfit._decoding import Decoder
    from skclusterfit._sources import StreamedImages

    paths = _mixed_photos(photos, tmp_path)
    host = StreamedImages(Decoder(paths, "paths", (160, 160), channels), None, num_workers)
    # A GPU gets the source that leaves enlarging to it; here the CPU plays the device.
    for_gpu = host.on_device(torch.device("cuda"))
    assert for_gpu is not host and not for_gpu.decoder.enlarge and host.decoder.enlarge
    assert host.on_device(torch.device("cpu")) is host
    # The small crop between photos: the batch is resized by shape, then put back in order.
    order = np.array([0, 3, 2, 1])
    (ids, expected), (got_ids, got) = (
        next(source.iter_batches(4, order, torch.device("cpu"))) for source in (host, for_gpu)
    )
    np.testing.assert_array_equal(got_ids, ids)
    assert got.shape == expected.shape == (4, channels, 160, 160) and got.dtype == torch.float32
    assert got.is_contiguous(memory_format=torch.channels_last)
    # Resized in float32 rather than in uint8: within one level of 255.
    difference = (got - expected).abs()
    assert difference.max() <= 1.01 / 255 and difference.mean() < 0.3 / 255
    # What leaves the host, uint8, one image after another: the smaller crop
    # (120x160) as it is, to be enlarged on the device; the photos (decoded at
    # half size, 214x320) and the larger crop (300x200) shrunk to 160x160 on the host.
    flat, shapes = next(for_gpu.iter_read(4, order))[1]
    assert flat.dtype == torch.uint8 and flat.ndim == 1
    assert shapes[:, :2].tolist() == [[160, 160], [120, 160], [160, 160], [160, 160]]
    assert (shapes[:, 2] == channels).all() and len(flat) == int(shapes.prod(1).sum())


def test_float_items_are_enlarged_on_the_device_as_on_the_host():
    from skclusterfit._decoding import Decoder
    from skclusterfit._sources import StreamedImages

    rng = np.random.RandomState(0)
    items = [rng.rand(side, side + 2, 1).astype(np.float32) for side in (8, 12, 12, 20)]
    mixed = [(items[0] * 255).astype(np.uint8), *items[1:]]  # the batch comes as floats
    for images, tolerance in ((items, 1e-6), (mixed, 1.01 / 255)):
        host = StreamedImages(Decoder(images, "dataset", (10, 10), 1), None, 0)
        (_, expected), (_, got) = (
            next(source.iter_batches(4, device=torch.device("cpu")))
            for source in (host, host.on_device(torch.device("cuda")))
        )
        # The 8x10 item is enlarged to 10x10 on the device, the others shrunk on
        # the host. Floats are resized in float32 either way; a uint8 item is
        # resized in uint8 on the host, and in float32 once scaled on the device.
        torch.testing.assert_close(got, expected, rtol=0, atol=tolerance)
        _, (_, shapes) = next(host.on_device(torch.device("cuda")).iter_read(4))
        assert shapes[:, :2].tolist() == [[8, 10], [10, 10], [10, 10], [10, 10]]


def test_a_fit_warns_of_resizing_once_whichever_copy_reads_first(photos, tmp_path):
    from skclusterfit._decoding import Decoder
    from skclusterfit._sources import StreamedImages

    paths = _mixed_photos(photos, tmp_path)
    host = StreamedImages(Decoder(paths, "paths", (96, 96), 3), None, 0, size_chosen=False)
    with pytest.warns(UserWarning, match="The images differ in size"):
        list(host.on_device(torch.device("cuda")).iter_batches(4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(host.iter_batches(4))
