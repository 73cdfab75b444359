"""Stage 2: clusterers, normalisation and degenerate clusterings."""

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning

from skclusterfit import ClusterFitTransformer
from skclusterfit._clustering import Clustering, cluster_each


def cluster(features, *, n_clusters: int, **options) -> Clustering:
    """One clustering of ``features``: :func:`cluster_each` with one number of clusters."""
    (result,) = cluster_each(features, n_clusters=[n_clusters], **options)
    return result


@pytest.fixture(scope="module")
def blobs():
    centres = np.random.RandomState(0).randn(4, 16) * 5
    points = np.repeat(centres, 50, axis=0) + np.random.RandomState(1).randn(200, 16)
    return points.astype(np.float32), np.repeat(np.arange(4), 50)


@pytest.mark.parametrize("method", ["kmeans", "minibatch", "faiss", "auto"])
def test_named_clusterers_find_well_separated_blobs(blobs, method):
    if method == "faiss":
        pytest.importorskip("faiss")
    points, truth = blobs
    result = cluster(points, n_clusters=4, clusterer=method, seed=0)
    expected = {
        "kmeans": KMeans(4, n_init=1, random_state=0),
        "minibatch": MiniBatchKMeans(4, n_init=3, batch_size=4096, random_state=0),
        "faiss": "faiss",
        "auto": KMeans(4, init="random", n_init=1, random_state=0),  # 50 images per cluster
    }[method]
    assert repr(result.method) == repr(expected)
    # Each true blob ends up in one cluster.
    for k in range(4):
        assert len(np.unique(result.labels[truth == k])) == 1
    # Centres are means of L2-normalised points.
    assert result.centers.shape == (4, 16)
    norms = np.linalg.norm(result.centers, axis=1)
    assert np.all((norms > 0.5) & (norms <= 1 + 1e-5))


def test_auto_rule():
    from skclusterfit._clustering import _choose

    for installed in (True, False):
        assert _choose("auto", 1_000, 100, installed) == "kmeans"  # 10 points per cluster
        assert _choose("auto", 10_000, 100, installed) == "kmeans-random"  # 100 per cluster
        assert _choose("auto", 60_000, 1_000, installed) == "kmeans-random"
        assert _choose("kmeans", 60_000, 1_000, installed) == "kmeans"
    # Above 256 points per cluster faiss trains on a sample and is the fastest.
    assert _choose("auto", 60_000, 100, faiss_installed=True) == "faiss"
    assert _choose("auto", 60_000, 100, faiss_installed=False) == "kmeans-random"
    assert _choose("faiss", 100, 10, faiss_installed=False) == "faiss"


def test_auto_uses_faiss_only_where_it_is_installed(monkeypatch):
    import importlib.util

    points = np.random.RandomState(0).randn(2_000, 8).astype(np.float32)
    installed = importlib.util.find_spec("faiss") is not None
    result = cluster(points, n_clusters=4, clusterer="auto", seed=0)
    if installed:
        assert result.method == "faiss"
    else:
        assert isinstance(result.method, KMeans)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    method = cluster(points, n_clusters=4, clusterer="auto", seed=0).method
    assert isinstance(method, KMeans) and method.init == "random"


def test_clusterer_instance_is_cloned_and_given_n_clusters(small_digits, tiny):
    X, _ = small_digits
    agglomerative = AgglomerativeClustering(n_clusters=2)
    cf = ClusterFitTransformer(**tiny, clusterer=agglomerative).fit(X)
    assert cf.n_clusters_ == 5 and isinstance(cf.clusterer_, AgglomerativeClustering)
    assert cf.clusterer_.n_clusters == 5 and not hasattr(cf.clusterer_, "labels_")
    assert agglomerative.get_params()["n_clusters"] == 2
    assert not hasattr(agglomerative, "labels_")


def test_unassigned_samples_are_left_out_of_training(small_digits, tiny):
    X, _ = small_digits
    cf = ClusterFitTransformer(
        **tiny,
        extractor=lambda x: x.flatten(1),
        clusterer=DBSCAN(eps=0.5, min_samples=5),
        pca_components=None,  # eps is on the scale of the pixels, not whitened ones
    )
    with pytest.warns(UserWarning, match="unassigned"):
        cf.fit(X)
    assert (cf.labels_ == -1).any() and cf.labels_.max() + 1 == cf.n_clusters_


def test_empty_clusters_are_dropped_with_a_warning(tiny):
    images = np.zeros((30, 64))
    images[15:] = 1.0  # two distinct images, five clusters asked for
    cf = ClusterFitTransformer(**tiny)
    with pytest.warns(UserWarning, match="found 2 non-empty clusters of the 5"):
        cf.fit(images)
    assert cf.n_clusters_ == 2
    assert set(cf.labels_) == {0, 1}
    assert np.isfinite(cf.transform(images)).all()


def test_labels_are_renumbered_contiguously():
    class Gappy(KMeans):
        def fit(self, X, y=None, sample_weight=None):
            super().fit(X)
            self.labels_ = self.labels_ * 3 + 1
            return self

    points = np.random.RandomState(0).randn(40, 3).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = cluster(
            points, n_clusters=3, clusterer=Gappy(n_init=1), l2_normalize=False, seed=0
        )
    assert set(result.labels) == {0, 1, 2}


def test_pca_whitening_and_l2(blobs):
    points, _ = blobs
    whitened = cluster(
        points, n_clusters=4, clusterer="kmeans", pca_components=3, l2_normalize=False, seed=0
    )
    assert whitened.centers.shape == (4, 3)
    normalised = cluster(
        points, n_clusters=4, clusterer="kmeans", pca_components=3, l2_normalize=True, seed=0
    )
    assert np.all(np.linalg.norm(normalised.centers, axis=1) <= 1 + 1e-5)


def test_convergence_warnings_are_silenced_only_for_the_package_s_own_clusterers():
    points = np.repeat(np.eye(2, 8, dtype=np.float32), 20, axis=0)  # two distinct points
    for method in ("kmeans", "minibatch", "auto"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cluster(points, n_clusters=4, clusterer=method, seed=0)
        assert [type(w.message) for w in caught] == [UserWarning], method
        assert "found 2 non-empty clusters of the 4" in str(caught[0].message)
    with pytest.warns(UserWarning, match="found 2"):
        with pytest.warns(ConvergenceWarning, match="distinct clusters"):
            cluster(points, n_clusters=4, clusterer=KMeans(n_init=1), seed=0)


def test_features_given_up_by_the_caller_are_clustered_without_a_copy():
    # fit gives up its embeddings: they are normalised in place and KMeans
    # centres them in place (copy_x=False), where each made a copy. KMeans still
    # makes one passing copy, in np.var, for its tolerance.
    features = np.random.RandomState(0).randn(20_000, 256).astype(np.float32)
    original = features.copy()
    reference = cluster(features, n_clusters=10, clusterer="kmeans", seed=0)
    np.testing.assert_array_equal(features, original)  # the caller's array is left alone
    tracemalloc.start()
    try:
        owned = cluster(features, n_clusters=10, clusterer="kmeans", seed=0, owned=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * features.nbytes, f"{peak / 1e6:.1f} MB for {features.nbytes / 1e6} MB"
    np.testing.assert_array_equal(owned.labels, reference.labels)
    np.testing.assert_allclose(owned.centers, reference.centers, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)


def test_clusterers_must_predict_integer_labels(small_digits, tiny):
    from sklearn.linear_model import LinearRegression
    from sklearn.mixture import GaussianMixture
    from sklearn.utils._param_validation import InvalidParameterError

    X, _ = small_digits
    # Clusterers are used through fit_predict, which a mixture model has and labels_ not.
    mixture = GaussianMixture(n_components=3, random_state=0)
    assert ClusterFitTransformer(**tiny, clusterer=mixture).fit(X).n_clusters_ == 3
    with pytest.raises(InvalidParameterError, match="object implementing 'fit_predict'"):
        ClusterFitTransformer(**tiny, clusterer=LinearRegression()).fit(X)

    class Fractional(KMeans):
        def fit_predict(self, X, y=None, sample_weight=None):
            return super().fit_predict(X) + 0.5

    with pytest.raises(ValueError, match="gave labels of shape .* and dtype float64 for 300"):
        ClusterFitTransformer(**tiny, clusterer=Fractional(n_init=1)).fit(X)


def test_non_finite_features_of_the_extractor_are_named(small_digits, tiny):
    X, _ = small_digits

    def broken(images):
        features = images.flatten(1).clone()
        features[images[:, 0, 0, 1] > 0.2] = float("nan")  # some images only
        return features

    first = int(np.argmax(X[:, 1] > 0.2 * 16))
    with pytest.raises(
        ValueError, match=rf"features hold NaN or infinity \(first for image {first}\)"
    ):
        ClusterFitTransformer(**tiny, extractor=broken).fit(X)


def test_several_numbers_of_clusters_share_one_preparation(blobs):
    from skclusterfit._clustering import cluster_each, entry_seed

    points, _ = blobs
    options = dict(clusterer="kmeans", seed=3, pca_components=8)
    results = cluster_each(points, n_clusters=[4, 7, 4], **options)
    # The first entry is the clustering of its number alone, with the same seed.
    single = cluster(points, n_clusters=4, **options)
    np.testing.assert_array_equal(results[0].labels, single.labels)
    np.testing.assert_array_equal(results[0].centers, single.centers)
    assert [r.n_clusters for r in results] == [4, 7, 4]
    assert [r.centers.shape for r in results] == [(4, 8), (7, 8), (4, 8)]  # all whitened
    seeds = [r.method.random_state for r in results]
    assert seeds == [3, entry_seed(3, 1), entry_seed(3, 2)] and len(set(seeds)) == 3
    assert all(0 <= seed < 2**31 for seed in seeds)
    assert entry_seed(4, 1) != entry_seed(3, 1)
    # Owned features are prepared in place once and stay usable for every entry.
    owned = cluster_each(
        points.copy(), n_clusters=[4, 7, 4], owned=True, clusterer="kmeans", seed=3
    )
    kept = cluster_each(points, n_clusters=[4, 7, 4], clusterer="kmeans", seed=3)
    for one, other in zip(owned, kept, strict=True):
        np.testing.assert_array_equal(one.labels, other.labels)
