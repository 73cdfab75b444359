"""Fits on several processes (torchrun, gloo on the CPU) and grid searches on Dask."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from torch.nn.parallel import DistributedDataParallel

from skclusterfit import ClusterFitTransformer, datasets, load

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "torchrun_clusterfit.py"


@pytest.mark.skipif(not SCRIPT.is_file(), reason="needs the repository")
@pytest.mark.parametrize("n_clusters", [[10], [10, 15]], ids=["one-clustering", "two-clusterings"])
def test_torchrun_fit_on_two_ranks_gives_one_plain_model(tmp_path, n_clusters):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # rendezvous on a free local port
        "--nproc_per_node=2",
        str(SCRIPT),
        *("--n-clusters", *map(str, n_clusters), "--epochs", "3", "--extractor-epochs", "1"),
        *("--batch-size", "64", "--output", str(tmp_path / "model.pt")),
        *("--pickle-dir", str(tmp_path)),
    ]
    path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Only rank 0 prints, a line per clustering.
    assert result.stderr.count("[ClusterFit] clustering:") == len(n_clusters)
    assert result.stderr.count("[ClusterFit] clusterfit: 3 epochs in") == 1
    assert result.stdout.count(f"2 ranks: {', '.join(map(str, n_clusters))} clusters") == 1

    models = []
    for rank in (0, 1):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as stream:
            models.append(pickle.load(stream))
    first, second = models
    assert type(first) is ClusterFitTransformer
    for name in ("network_", "extractor_"):
        module = getattr(first, name)
        assert isinstance(module, torch.nn.Module)
        assert not isinstance(module, DistributedDataParallel)
        one, two = module.state_dict(), getattr(second, name).state_dict()
        assert one.keys() == two.keys()
        for key in one:
            assert torch.equal(one[key], two[key]), f"{name}.{key} differs between ranks"
    # Rank 0 clustered and sent every clustering to rank 1.
    assert first.n_clusters_all_ == second.n_clusters_all_ == n_clusters
    for name in ("labels_all_", "cluster_centers_all_"):
        for one, two in zip(getattr(first, name), getattr(second, name), strict=True):
            np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    np.testing.assert_array_equal(first.cluster_centers_, second.cluster_centers_)
    assert first.history_ == second.history_
    assert first.n_clusters_ == 10 and len(np.unique(first.labels_)) == 10
    assert [len(np.unique(labels)) for labels in first.labels_all_] == n_clusters
    losses = [h["loss"] for h in first.history_ if h["stage"] == "clusterfit"]
    assert len(losses) == 3 and losses[-1] < losses[0]

    # The fitted model works in this ordinary process, from the pickle or the file.
    X = datasets.load_digits().data[:50]
    features = first.transform(X)
    assert features.shape == (50, 64 + 128 + 256) and np.isfinite(features).all()
    np.testing.assert_array_equal(load(tmp_path / "model.pt").transform(X), features)


def _grid_search(X, y, precision):
    # n_jobs=1: Dask's workers run torch on one thread (its nanny sets
    # OMP_NUM_THREADS=1), and torch's CPU results change in the last bits
    # with the number of threads; so does this process's run with n_jobs=1.
    cf = ClusterFitTransformer(
        max_epochs=1,
        extractor_epochs=1,
        batch_size=64,
        device="cpu",
        n_jobs=1,
        precision=precision,
        random_state=0,
    )
    pipe = Pipeline([("cf", cf), ("clf", LogisticRegression(max_iter=200))])
    return GridSearchCV(pipe, {"cf__n_clusters": [5, 15]}, cv=2).fit(X, y)


def test_grid_search_on_a_dask_cluster_matches_the_local_one(tmp_path, auto_precision):
    distributed = pytest.importorskip("distributed")
    X, y = datasets.load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    local = _grid_search(X, y, auto_precision)
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        dashboard_address=None,
        local_directory=tmp_path,
    ) as cluster:
        with distributed.Client(cluster) as client, joblib.parallel_backend("dask"):
            with distributed.get_task_stream(client) as tasks:
                remote = _grid_search(X, y, auto_precision)
        # The cross-validation fits ran on both workers.
        assert len({task["worker"] for task in tasks.data}) == 2
    assert remote.best_params_ == local.best_params_
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])


GATHER_SCRIPT = """
import numpy as np
import torch.distributed as dist
from skclusterfit import _distributed as distributed

dist.init_process_group("gloo")
n = 7  # blocks of 4 and 3 rows
rows = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
gathered = distributed.gather_blocks(rows[distributed.block(n)], n)
if dist.get_rank() == 0:
    assert np.array_equal(gathered, rows), gathered
else:
    assert gathered is None, "only rank 0 clusters, so only it holds every row"
assert distributed.run_on_main(lambda: dist.get_rank() + 10) == 10


def clustering_fails():
    raise ValueError("no cluster")


try:  # an error on rank 0 alone reaches every rank, which would otherwise wait for ever
    distributed.run_on_main(clustering_fails)
except ValueError as error:
    assert str(error) == "no cluster"
else:
    raise AssertionError("run_on_main did not raise")
print(f"rank {dist.get_rank()} ok", flush=True)
dist.destroy_process_group()
"""


def test_rank_0_gathers_the_features_and_hands_out_results_and_errors(tmp_path):
    script = tmp_path / "gather.py"
    script.write_text(GATHER_SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", str(script)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    # Both ranks print at the same moment, so their lines may interleave.
    assert "rank 0 ok" in result.stdout and "rank 1 ok" in result.stdout
