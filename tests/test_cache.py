"""``checkpoint_dir`` as a stage cache: reuse across fits, grid searches, concurrent fits."""

import subprocess
import sys
import threading

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skclusterfit import ClusterFitTransformer
from skclusterfit._checkpoints import (
    CLUSTER_PARAMS,
    EXTRACT_PARAMS,
    FIT_PARAMS,
    NO_STAGE_PARAMS,
    Checkpoints,
)


def _count_saves(monkeypatch) -> dict:
    """Count the files each stage writes (N_pre and N_cf: one per epoch trained)."""
    saves: dict = {}
    save = Checkpoints.save

    def counting(self, stage, state):
        saves[stage] = saves.get(stage, 0) + 1
        save(self, stage, state)

    monkeypatch.setattr(Checkpoints, "save", counting)
    return saves


def test_every_parameter_has_its_place_in_the_keys():
    # A new parameter must be put in a stage's key, or among those in none.
    placed = {*EXTRACT_PARAMS, *CLUSTER_PARAMS, *FIT_PARAMS, *NO_STAGE_PARAMS, "random_state"}
    assert placed == set(ClusterFitTransformer().get_params())
    assert not set(NO_STAGE_PARAMS) & {*EXTRACT_PARAMS, *CLUSTER_PARAMS, *FIT_PARAMS}


@pytest.mark.parametrize(
    "later",
    [
        {"n_clusters": 8},
        {"n_clusters": [5, 8]},
        {"clusterer": "minibatch", "pca_components": None, "l2_normalize": False},
        {"max_epochs": 2, "balanced_sampling": True},
    ],
    ids=["n_clusters", "list", "clustering", "N_cf"],
)
def test_a_fit_reusing_earlier_stages_is_the_fit_without_them(
    small_digits, tiny, tmp_path, monkeypatch, later
):
    X, _ = small_digits
    params = {**tiny, "extractor_epochs": 2, "n_jobs": 1}
    ClusterFitTransformer(**params, checkpoint_dir=tmp_path).fit(X)
    saves = _count_saves(monkeypatch)
    reusing = ClusterFitTransformer(**{**params, **later}, checkpoint_dir=tmp_path).fit(X)
    alone = ClusterFitTransformer(**{**params, **later}).fit(X)
    np.testing.assert_array_equal(reusing.transform(X), alone.transform(X))
    for labels, expected in zip(reusing.labels_all_, alone.labels_all_, strict=True):
        np.testing.assert_array_equal(labels, expected)
    assert "rotnet" not in saves and "embeddings" not in saves  # N_pre was reused
    # A change of N_cf alone reuses the clustering too.
    assert ("clustering" in saves) == ("max_epochs" not in later)


def test_a_grid_search_over_k_trains_n_pre_once_per_fold(small_digits, tiny, tmp_path, monkeypatch):
    X, y = small_digits
    params = {**tiny, "extractor_epochs": 2, "n_jobs": 1}
    pipe = Pipeline([("cf", ClusterFitTransformer(**params)), ("clf", LogisticRegression())])
    grid = {"cf__n_clusters": [3, 5, 8]}
    alone = GridSearchCV(pipe, grid, cv=2, refit=False).fit(X, y)
    saves = _count_saves(monkeypatch)
    pipe.set_params(cf__checkpoint_dir=tmp_path)
    cached = GridSearchCV(pipe, grid, cv=2, refit=False).fit(X, y)
    # Two folds, two epochs of N_pre each; three clusterings and N_cf per fold.
    assert saves == {"rotnet": 4, "embeddings": 2, "clustering": 6, "clusterfit": 6}
    for name in ("split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(cached.cv_results_[name], alone.cv_results_[name])


def test_fits_in_threads_sharing_the_folder_end_as_they_would_alone(small_digits, tiny, tmp_path):
    # Two fits of the same stages at once (the second reuses the first's
    # stages), one of other clusters and one of another seed; they take turns,
    # and torch's thread count is left alone.
    X, _ = small_digits
    settings = [{"n_clusters": 5}, {"n_clusters": 5}, {"n_clusters": 8}, {"random_state": 1}]
    alone = [ClusterFitTransformer(**{**tiny, **s}).fit(X).transform(X) for s in settings]
    results: dict = {}

    def fit(position):
        cf = ClusterFitTransformer(**{**tiny, **settings[position]}, checkpoint_dir=tmp_path)
        results[position] = cf.fit(X)

    threads = [threading.Thread(target=fit, args=(i,)) for i in range(len(settings))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    for position, expected in enumerate(alone):
        np.testing.assert_array_equal(results[position].transform(X), expected)


FIT_SCRIPT = """
import sys
import numpy as np
from sklearn.datasets import load_digits
from skclusterfit import ClusterFitTransformer
params = {params}
X = load_digits().data[:300]
features = ClusterFitTransformer(**params, checkpoint_dir=sys.argv[1]).fit(X).transform(X)
np.save(sys.argv[2], features)
"""


def test_fits_in_processes_sharing_the_folder_end_as_they_would_alone(
    digits, tiny, tmp_path, auto_precision
):
    X = digits[0][:300]
    params = {**tiny, "extractor_epochs": 3, "n_jobs": 1, "precision": auto_precision}
    runs = [params, params, {**params, "n_clusters": 8}]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                FIT_SCRIPT.format(params=repr(run)),
                str(tmp_path / "cache"),
                str(tmp_path / f"{i}.npy"),
            ]
        )
        for i, run in enumerate(runs)
    ]
    for process in processes:
        assert process.wait(timeout=300) == 0
    for i, run in enumerate(runs):
        expected = ClusterFitTransformer(**run).fit(X).transform(X)
        np.testing.assert_array_equal(np.load(tmp_path / f"{i}.npy"), expected)
    assert len(list((tmp_path / "cache").glob("rotnet-*.pt"))) == 1
    assert not list((tmp_path / "cache").glob(".*.tmp"))


def test_stages_are_keyed_by_the_batch_size_auto_resolves_to(
    small_digits, tiny, tmp_path, monkeypatch
):
    # On the CPU "auto" trains with 128 images a step, so it reuses every stage
    # of a fit with batch_size=128, and none of a fit with another size.
    X, _ = small_digits
    params = {**tiny, "n_jobs": 1, "checkpoint_dir": tmp_path}
    ClusterFitTransformer(**{**params, "batch_size": 128}).fit(X)
    saves = _count_saves(monkeypatch)
    ClusterFitTransformer(**{**params, "batch_size": "auto"}).fit(X)
    assert saves == {}
    ClusterFitTransformer(**{**params, "batch_size": 64}).fit(X)
    assert saves == {"rotnet": 1, "embeddings": 1, "clustering": 1, "clusterfit": 1}
