"""write_features and load_features: features on disk, a chunk at a time, resumable."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_features, write_features

ROOT = Path(__file__).resolve().parents[1]


class Counting:
    """Wraps a transformer's transform: counts the images it is asked for; may fail."""

    def __init__(self, cf, fail_after=None):
        self.cf, self.fail_after, self.calls, self.rows = cf, fail_after, 0, 0

    def __call__(self, X):
        if self.fail_after is not None and self.calls == self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.rows += len(X)
        return type(self.cf).transform(self.cf, X)


def test_array_features_are_those_of_transform(fitted, tmp_path):
    cf, X = fitted
    folder = write_features(cf, X, tmp_path / "out", chunk_size=70)
    stored = load_features(folder)
    np.testing.assert_allclose(stored.features, cf.transform(X), atol=1e-5)
    assert stored.features.dtype == np.float32 and isinstance(stored.features, np.memmap)
    assert stored.paths is None
    assert stored.manifest["complete"] and stored.manifest["n_images"] == 300
    assert sorted(os.listdir(folder / "chunks")) == [f"{c:06d}" for c in range(5)]
    with open(folder / "images.csv", newline="") as stream:
        assert next(csv.reader(stream)) == ["index"]


def test_file_features_have_their_paths(digit_files, tiny, tmp_path):
    paths, _ = digit_files
    cf = ClusterFitTransformer(**tiny).fit(paths)
    folder = write_features(cf, paths, tmp_path / "out", chunk_size=64)
    stored = load_features(folder)
    assert stored.paths == paths
    np.testing.assert_allclose(stored.features, cf.transform(paths), atol=1e-5)
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    table = pd.read_parquet(folder / "images.parquet")
    assert table["path"].tolist() == paths and table["index"].tolist() == list(range(200))


def test_dataset_features(fitted, tmp_path):
    cf, X = fitted
    images = torch.from_numpy((X[:100] * 255 / 16).astype(np.float32) / 255).reshape(-1, 1, 8, 8)
    dataset = TensorDataset(images, torch.zeros(100))
    stored = load_features(write_features(cf, dataset, tmp_path / "out", chunk_size=30))
    np.testing.assert_allclose(stored.features, cf.transform(dataset), atol=1e-5)


def test_an_interrupted_write_resumes_with_no_chunk_recomputed(fitted, tmp_path, monkeypatch):
    cf, X = fitted
    folder = tmp_path / "out"
    interrupted = Counting(cf, fail_after=2)
    monkeypatch.setattr(cf, "transform", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_features(cf, X, folder, chunk_size=64)
    assert sorted(os.listdir(folder / "chunks")) == ["000000", "000001"]
    with pytest.raises(ValueError, match="not all written"):
        load_features(folder)
    resumed = Counting(cf)
    monkeypatch.setattr(cf, "transform", resumed)
    write_features(cf, X, folder, chunk_size=64)
    assert resumed.calls == 3 and resumed.rows == 300 - 128  # chunks 2, 3 and 4 only
    monkeypatch.undo()
    np.testing.assert_allclose(load_features(folder).features, cf.transform(X), atol=1e-5)
    again = Counting(cf)
    monkeypatch.setattr(cf, "transform", again)
    write_features(cf, X, folder, chunk_size=64)  # complete: nothing to compute
    assert again.calls == 0


def test_a_folder_of_other_features_is_refused(fitted, digits, tmp_path):
    cf, X = fitted
    folder = write_features(cf, X, tmp_path / "out", chunk_size=100)
    before = (folder / "features.npy").read_bytes()
    with pytest.raises(ValueError, match=r"other images.*\(images, n_images differ\)"):
        write_features(cf, digits[0][:200], folder, chunk_size=100)
    with pytest.raises(ValueError, match=r"\(chunk_size differ\)"):
        write_features(cf, X, folder, chunk_size=50)
    other = ClusterFitTransformer(
        n_clusters=5, max_epochs=1, extractor_epochs=1, device="cpu", random_state=1
    ).fit(X)
    with pytest.raises(ValueError, match=r"\(model differ\)"):
        write_features(other, X, folder, chunk_size=100)
    assert (folder / "features.npy").read_bytes() == before
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        write_features(cf, X, busy)
    with pytest.raises(FileNotFoundError, match="not a folder written by write_features"):
        load_features(busy)
    with pytest.raises(ValueError, match="chunk_size"):
        write_features(cf, X, tmp_path / "new", chunk_size=0)


def test_bad_images_are_refused_before_anything_is_written(fitted, tmp_path):
    cf, _ = fitted
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_features(cf, [str(tmp_path / "missing.png")], tmp_path / "out")
    assert not (tmp_path / "out").exists()


WRITE_SCRIPT = """
import json, sys
import numpy as np
import torch.distributed as dist
from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_features, write_features
from sklearn.datasets import load_digits

dist.init_process_group("gloo")
X = load_digits().data[:300]
cf = ClusterFitTransformer(n_clusters=5, max_epochs=1, extractor_epochs=1, device="cpu",
                           random_state=0).fit(X)  # the same model on both ranks (CPU, seeded)
rows = []
transform = cf.transform
cf.transform = lambda A: rows.append(len(A)) or transform(A)
write_features(cf, X, sys.argv[1], chunk_size=64)
with open(f"{sys.argv[1]}.rank{dist.get_rank()}", "w") as stream:
    json.dump(rows, stream)
if dist.get_rank() == 0:
    np.testing.assert_allclose(load_features(sys.argv[1]).features, transform(X), atol=1e-5)
print(f"rank {dist.get_rank()} ok", flush=True)
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_each_rank_writes_its_share(tmp_path):
    script = tmp_path / "write.py"
    script.write_text(WRITE_SCRIPT)
    folder = tmp_path / "out"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", str(script), str(folder)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    shares = [json.loads(Path(f"{folder}.rank{r}").read_text()) for r in (0, 1)]
    assert shares == [[64, 64, 44], [64, 64]]  # chunks 0, 2, 4 and 1, 3
    assert json.loads((folder / "manifest.json").read_text())["complete"]
