"""n_clusters as a list: one clustering and one head of N_cf per entry."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.cluster import AgglomerativeClustering
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skclusterfit import ClusterFitTransformer
from skclusterfit._clustering import entry_seed


def _without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def test_an_int_fit_holds_its_clustering_in_one_entry_lists(small_digits, tiny):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny).fit(X)
    assert cf.n_clusters_all_ == [cf.n_clusters_] == [5]
    assert len(cf.labels_all_) == 1 and cf.labels_all_[0] is cf.labels_
    assert len(cf.cluster_centers_all_) == 1 and cf.cluster_centers_all_[0] is cf.cluster_centers_
    assert cf.clusterer_all_ == [cf.clusterer_]
    assert isinstance(cf.network_.head, torch.nn.Linear)


def test_a_list_gives_one_clustering_and_one_head_per_entry(small_digits, tiny):
    X, _ = small_digits
    one = ClusterFitTransformer(**tiny).fit(X)
    cf = ClusterFitTransformer(**{**tiny, "n_clusters": [5, 20, 8]}).fit(X)
    assert cf.n_clusters_all_ == [5, 20, 8]
    assert [labels.shape for labels in cf.labels_all_] == [(300,)] * 3
    assert [len(np.unique(labels)) for labels in cf.labels_all_] == [5, 20, 8]
    # Clustered after PCA whitening to 64 dimensions.
    assert [c.shape for c in cf.cluster_centers_all_] == [(5, 64), (20, 64), (8, 64)]
    # The first entry stands for the whole: it is the clustering of the int.
    assert cf.n_clusters_ == 5 and cf.labels_ is cf.labels_all_[0]
    assert (
        cf.cluster_centers_ is cf.cluster_centers_all_[0] and cf.clusterer_ is cf.clusterer_all_[0]
    )
    np.testing.assert_array_equal(cf.labels_, one.labels_)
    np.testing.assert_array_equal(cf.cluster_centers_, one.cluster_centers_)
    # Each entry by the clusterer "auto" picks for its number: 300 images make 15
    # per cluster for 20 clusters (k-means++), 60 and 37 for the others.
    assert [c.init for c in cf.clusterer_all_] == ["random", "k-means++", "random"]
    assert [c.n_clusters for c in cf.clusterer_all_] == [5, 20, 8]
    # One linear head per entry on the shared features.
    heads = cf.network_.head.heads
    assert [(h.in_features, h.out_features) for h in heads] == [(256, 5), (256, 20), (256, 8)]
    assert cf.transform(X[:7]).shape == (7, 64 + 128 + 256)
    logits = cf.set_params(feature_layer="logits").transform(X)
    assert logits.shape == (300, 33) and len(cf.get_feature_names_out()) == 33
    with torch.no_grad():
        features = cf.network_.features(torch.from_numpy(X[:7] / 16).float().view(7, 1, 8, 8))
        second = heads[1](features).numpy()
    np.testing.assert_allclose(logits[:7, 5:25], second, rtol=1e-5, atol=1e-5)
    # predict: the first head's clusters.
    predicted = cf.predict(X)
    np.testing.assert_array_equal(predicted, logits[:, :5].argmax(1))
    assert set(predicted) <= set(range(5))
    assert [h["stage"] for h in cf.history_] == ["rotnet", "clusterfit"]


def test_a_list_of_one_fits_as_its_int_and_a_tuple_as_its_list(small_digits, tiny):
    X, _ = small_digits
    as_int = ClusterFitTransformer(**tiny).fit(X)
    as_list = ClusterFitTransformer(**{**tiny, "n_clusters": [5]}).fit(X)
    np.testing.assert_array_equal(as_list.transform(X), as_int.transform(X))
    np.testing.assert_array_equal(as_list.predict(X), as_int.predict(X))
    assert _without_seconds(as_list.history_) == _without_seconds(as_int.history_)
    as_tuple = ClusterFitTransformer(**{**tiny, "n_clusters": (5, 8)}).fit(X)
    listed = ClusterFitTransformer(**{**tiny, "n_clusters": [np.int64(5), 8]}).fit(X)
    np.testing.assert_array_equal(as_tuple.transform(X), listed.transform(X))
    assert as_tuple.n_clusters_all_ == listed.n_clusters_all_ == [5, 8]


def test_every_entry_has_a_seed_of_its_own_from_random_state(small_digits, tiny):
    X, _ = small_digits
    params = {**tiny, "n_clusters": [5, 5, 5]}
    cf = ClusterFitTransformer(**params).fit(X)
    seeds = [c.random_state for c in cf.clusterer_all_]
    assert len(set(seeds)) == 3 and seeds[1:] == [entry_seed(seeds[0], i) for i in (1, 2)]
    assert not np.array_equal(cf.labels_all_[0], cf.labels_all_[2])
    again = ClusterFitTransformer(**params).fit(X)
    assert [c.random_state for c in again.clusterer_all_] == seeds
    for first, second in zip(cf.labels_all_, again.labels_all_, strict=True):
        np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(cf.transform(X), again.transform(X))
    other = ClusterFitTransformer(**{**params, "random_state": 1}).fit(X)
    assert not set(c.random_state for c in other.clusterer_all_) & set(seeds)


@pytest.mark.parametrize(
    "n_clusters, message",
    [
        ([], r"Got \[\] instead: it names no clustering"),
        ((), r"Got \(\) instead: it names no clustering"),
        ([5, 0], r"entry 1 is 0; every number of clusters must be 1 or more"),
        ([5, -3], r"entry 1 is -3"),
        ([5, 2.5], r"entry 1, 2.5, is a float, not an int"),
        ([5, "10"], r"entry 1, '10', is a str, not an int"),
        ([True, 5], r"entry 0, True, is a bool, not an int"),
        ([5, [10, 20]], r"entry 1 is a list; give one flat list"),
        ([(5, 10)], r"entry 0 is a tuple; give one flat list"),
        ("5", r"must be an int in the range \[1, inf\), an instance of 'list' or an instance"),
        (np.array([5, 10]), r"an instance of 'list' or an instance of 'tuple'"),
        (0, r"must be an int in the range \[1, inf\)"),
    ],
)
def test_invalid_n_clusters_are_refused_clearly(small_digits, tiny, n_clusters, message):
    X, _ = small_digits
    with pytest.raises(InvalidParameterError, match=message):
        ClusterFitTransformer(**{**tiny, "n_clusters": n_clusters}).fit(X)


def test_n_clusters_is_stored_untouched_and_clones(small_digits, tiny):
    X, _ = small_digits
    n_clusters = [5, 8]
    cf = ClusterFitTransformer(**{**tiny, "n_clusters": n_clusters})
    assert cf.get_params()["n_clusters"] is n_clusters
    cf.fit(X)
    assert cf.get_params()["n_clusters"] is n_clusters and n_clusters == [5, 8]
    copy = clone(cf)
    assert copy.n_clusters == [5, 8] and type(copy.n_clusters) is list
    np.testing.assert_array_equal(copy.fit(X).transform(X), cf.transform(X))
    assert type(clone(cf.set_params(n_clusters=(5, 8))).n_clusters) is tuple


def test_grid_search_over_ints_and_lists(small_digits, tiny):
    X, y = small_digits
    settings = {k: v for k, v in tiny.items() if k != "n_clusters"}
    pipe = Pipeline(
        [("cf", ClusterFitTransformer(**settings)), ("clf", LogisticRegression(max_iter=200))]
    )
    grid = [5, [5, 10]]
    search = GridSearchCV(pipe, {"cf__n_clusters": grid}, cv=2, error_score="raise")
    search.fit(X, y)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert list(search.cv_results_["param_cf__n_clusters"]) == grid
    best = search.best_params_["cf__n_clusters"]
    assert best in grid
    fitted = search.best_estimator_.named_steps["cf"]
    assert fitted.n_clusters_all_ == (best if isinstance(best, list) else [best])
    assert 0 <= search.score(X, y) <= 1


def test_each_entry_is_checked_against_the_number_of_images(small_digits, tiny):
    X, _ = small_digits
    with pytest.raises(ValueError, match=r"n_clusters\[1\]=400 is larger than the number of"):
        ClusterFitTransformer(**{**tiny, "n_clusters": [5, 400]}).fit(X)
    with pytest.warns(UserWarning, match=r"n_clusters\[1\]=1 gives one head of N_cf a single"):
        cf = ClusterFitTransformer(**{**tiny, "n_clusters": [5, 1]}).fit(X)
    assert cf.n_clusters_all_ == [5, 1] and set(cf.labels_all_[1]) == {0}


def test_a_list_with_the_supervised_extractor_and_balanced_sampling(small_digits, tiny):
    X, y = small_digits
    params = {**tiny, "n_clusters": [5, 12], "balanced_sampling": True}
    cf = ClusterFitTransformer(**params, extractor="supervised").fit(X, y)
    assert [h["stage"] for h in cf.history_] == ["supervised", "clusterfit"]
    assert cf.n_clusters_all_ == [5, 12] and cf.transform(X[:3]).shape == (3, 64 + 128 + 256)
    single = ClusterFitTransformer(**{**params, "n_clusters": 5}, extractor="supervised").fit(X, y)
    np.testing.assert_array_equal(cf.labels_, single.labels_)  # the same N_pre and clustering


def test_a_list_with_a_scikit_learn_clusterer(small_digits, tiny):
    X, _ = small_digits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cf = ClusterFitTransformer(
            **{**tiny, "n_clusters": [3, 6]}, clusterer=AgglomerativeClustering()
        ).fit(X)
    assert [c.n_clusters for c in cf.clusterer_all_] == [3, 6]
    assert [len(np.unique(labels)) for labels in cf.labels_all_] == [3, 6]
