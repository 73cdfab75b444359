"""ImageIndex and its displays: search, near-duplicates and outliers."""

import pickle

import matplotlib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skclusterfit import ClusterFitTransformer
from skclusterfit.neighbors import (
    DuplicatesDisplay,
    ImageIndex,
    NeighborsDisplay,
    OutliersDisplay,
    _index,
)

matplotlib.use("Agg")


def _cosine(A, B):
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    B = B / np.linalg.norm(B, axis=1, keepdims=True)
    return 1.0 - A @ B.T


@pytest.mark.parametrize("backend", ["sklearn", "faiss"])
def test_kneighbors_are_the_nearest_by_cosine_distance(fitted, digits, backend):
    pytest.importorskip("faiss") if backend == "faiss" else None
    cf, X = fitted
    queries = digits[0][300:340]
    index = ImageIndex(cf, n_neighbors=7, backend=backend).fit(X)
    distances, indices = index.kneighbors(queries)
    assert distances.shape == indices.shape == (40, 7)
    assert distances.dtype == np.float32 and indices.dtype == np.int64
    expected = _cosine(cf.transform(queries), cf.transform(X))
    np.testing.assert_allclose(distances, np.sort(expected, axis=1)[:, :7], atol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(expected, indices, 1), distances, atol=1e-5)
    assert index.backend_ == backend


def test_the_two_backends_agree_up_to_ties(fitted, digits):
    pytest.importorskip("faiss")
    cf, X = fitted
    queries = digits[0][300:500]
    by = {b: ImageIndex(cf, backend=b).fit(X).kneighbors(queries, 11) for b in ("sklearn", "faiss")}
    (d1, i1), (d2, i2) = by["sklearn"], by["faiss"]
    np.testing.assert_allclose(d1, d2, atol=1e-5)
    # Where a neighbour's distance is clear of the next and the previous (the
    # 11th neighbour bounds the 10th), it is the same image.
    gaps = np.diff(d1, axis=1)
    clear = np.ones_like(d1, dtype=bool)
    clear[:, 1:] &= gaps > 1e-4
    clear[:, :-1] &= gaps > 1e-4
    clear = clear[:, :10]
    assert clear.mean() > 0.5
    np.testing.assert_array_equal(i1[:, :10][clear], i2[:, :10][clear])
    groups = {b: ImageIndex(cf, backend=b).fit(X).duplicates(0.02) for b in ("sklearn", "faiss")}
    assert [g.tolist() for g in groups["sklearn"]] == [g.tolist() for g in groups["faiss"]]


def test_a_query_of_the_fitted_images_leaves_each_out(fitted):
    cf, X = fitted
    data = np.concatenate([X, X[:5]])  # five exact copies: each image's nearest is its copy
    index = ImageIndex(cf, n_neighbors=3, backend="sklearn").fit(data)
    distances, indices = index.kneighbors()
    assert indices.shape == (305, 3)
    assert not (indices == np.arange(305)[:, None]).any()
    copies = np.r_[np.arange(300, 305), np.arange(5)]
    np.testing.assert_array_equal(indices[np.r_[0:5, 300:305], 0], copies)
    np.testing.assert_allclose(distances[np.r_[0:5, 300:305], 0], 0, atol=1e-6)
    assert index.kneighbors(n_neighbors=304, return_distance=False).shape == (305, 304)
    with pytest.raises(ValueError, match=r"n_neighbors must be an int in \[1, 304\]"):
        index.kneighbors(n_neighbors=305)
    with pytest.raises(ValueError, match=r"in \[1, 305\] \(the fitted images\)"):
        index.kneighbors(X[:2], n_neighbors=306)


def test_duplicates_are_the_connected_groups_within_the_threshold(fitted):
    cf, X = fitted
    data = np.concatenate([X, X[[3, 3, 7]]])  # image 3 three times, image 7 twice
    index = ImageIndex(cf, backend="sklearn").fit(data)
    groups = index.duplicates(threshold=1e-6)
    assert [g.tolist() for g in groups] == [[3, 300, 301], [7, 302]]
    # The groups are the components of the radius graph, computed here by hand.
    threshold = float(np.quantile(index.kneighbors(n_neighbors=1)[0], 0.3))
    linked = _cosine(index.features_, index.features_) <= threshold
    found = index.duplicates(threshold)
    for group in found:
        inside = linked[np.ix_(group, group)]
        assert inside.sum(axis=1).min() >= 2  # each member linked to another (and itself)
        outside = np.setdiff1d(np.arange(len(data)), group)
        assert not linked[np.ix_(group, outside)].any()
    members = np.concatenate(found)
    assert len(members) == len(np.unique(members))
    alone = np.setdiff1d(np.arange(len(data)), members)
    assert (linked[alone].sum(axis=1) == 1).all()  # linked to itself only
    assert [len(g) for g in found] == sorted((len(g) for g in found), reverse=True)
    with pytest.raises(ValueError, match="threshold"):
        index.duplicates(threshold=-0.1)


def test_outlier_scores_are_the_kth_neighbours_distance(fitted, digits):
    cf, X = fitted
    index = ImageIndex(cf, n_neighbors=4, backend="sklearn").fit(X)
    scores = index.outlier_scores()
    np.testing.assert_array_equal(scores, index.kneighbors()[0][:, 3])
    queries = digits[0][300:320]
    np.testing.assert_array_equal(
        index.outlier_scores(queries, n_neighbors=2), index.kneighbors(queries, 2)[0][:, 1]
    )
    # An image with a copy among the fitted ones scores 0 by its nearest neighbour.
    copied = ImageIndex(cf, n_neighbors=1, backend="sklearn").fit(np.concatenate([X, X[:1]]))
    scores = copied.outlier_scores()
    assert scores[0] == scores[300] == pytest.approx(0, abs=1e-6)
    assert (scores[1:300] > 0).all()


def test_names_are_the_file_paths(digit_files, tiny):
    paths, _ = digit_files
    cf = ClusterFitTransformer(**tiny).fit(paths)
    index = ImageIndex(cf, n_neighbors=2, backend="sklearn").fit(paths[:150])
    assert index.names_.tolist() == paths[:150]
    _, indices = index.kneighbors(paths[150:160])
    assert index.names_[indices].shape == (10, 2)
    display = NeighborsDisplay.from_index(index, paths[150:153], n_neighbors=2)
    assert display.names.tolist() == index.names_[display.indices].tolist()
    assert ImageIndex(cf).fit(np.zeros((4, 64), np.uint8) + np.arange(4)[:, None]).names_ is None


def test_the_index_checks_its_transformer_and_backend(fitted, monkeypatch):
    cf, X = fitted
    with pytest.raises(NotFittedError):
        ImageIndex(ClusterFitTransformer()).fit(X)
    with pytest.raises(TypeError, match="pass its ClusterFitTransformer step"):
        ImageIndex(make_pipeline(StandardScaler(), cf)).fit(X)
    with pytest.raises(NotFittedError):
        ImageIndex(cf).kneighbors(X[:2])
    with pytest.raises(ValueError, match="backend"):
        ImageIndex(cf, backend="annoy").fit(X)
    with pytest.raises(ValueError, match="at least 2 images"):
        ImageIndex(cf).fit(X[:1])
    import builtins

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("no faiss")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    assert ImageIndex(cf).fit(X).backend_ == "sklearn"
    with pytest.raises(ImportError, match="skclusterfit\\[faiss\\]"):
        ImageIndex(cf, backend="faiss").fit(X)


def test_the_index_clones_and_pickles(fitted):
    cf, X = fitted
    index = ImageIndex(cf, n_neighbors=3).fit(X)
    assert clone(index).get_params()["n_neighbors"] == 3
    again = pickle.loads(pickle.dumps(index))
    np.testing.assert_array_equal(again.kneighbors(X[:10])[1], index.kneighbors(X[:10])[1])


def test_unit_rows_keeps_zero_rows_zero():
    rows = _index.unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]])


def test_the_displays_show_what_the_index_finds(fitted, digits):
    cf, X = fitted
    index = ImageIndex(cf, backend="sklearn").fit(np.concatenate([X, X[[3, 3, 7]]]))
    queries = digits[0][300:303]
    shown = NeighborsDisplay.from_index(index, queries, n_neighbors=4)
    assert shown.ax_.shape == (3, 5) and len(shown.images) == 3
    assert shown.images[0].shape == (5, 8, 8, 1)
    np.testing.assert_array_equal(shown.indices, index.kneighbors(queries, 4)[1])
    np.testing.assert_allclose(shown.images[0][0, ..., 0], queries[0].reshape(8, 8) / 16)

    groups = DuplicatesDisplay.from_index(index, threshold=1e-6, n_images=2)
    assert [g.tolist() for g in groups.groups] == [[3, 300, 301], [7, 302]]
    assert groups.ax_.shape == (2, 2) and groups.images[0].shape[0] == 2
    assert groups.names is None
    with pytest.raises(ValueError, match="No near-duplicates within a cosine distance of 0.0"):
        DuplicatesDisplay.from_index(ImageIndex(cf).fit(X[:50]), threshold=0.0)

    top = OutliersDisplay.from_index(index, n_images=10, n_columns=4)
    assert top.ax_.shape == (3, 4)
    scores = index.outlier_scores()
    np.testing.assert_array_equal(top.scores, np.sort(scores)[::-1][:10])
    np.testing.assert_array_equal(scores[top.indices], top.scores)
    unseen = OutliersDisplay.from_index(index, queries, n_images=2)
    assert unseen.indices.max() < 3
    with pytest.raises(TypeError, match="needs a fitted ImageIndex"):
        OutliersDisplay.from_index(cf)


def test_precomputed_features_are_used_as_given(fitted):
    cf, X = fitted
    features = cf.transform(X)
    index = ImageIndex(cf, backend="sklearn").fit(X, features=features)
    np.testing.assert_allclose(index.features_, ImageIndex(cf).fit(X).features_, atol=1e-6)
    with pytest.raises(ValueError, match="one row per image of X"):
        ImageIndex(cf).fit(X, features=features[:10])


def test_the_documented_default_threshold_is_the_one_used():
    import inspect

    from skclusterfit.datasets import export_duplicates
    from skclusterfit.neighbors import DUPLICATE_THRESHOLD

    for function in (ImageIndex.duplicates, DuplicatesDisplay.from_index, export_duplicates):
        assert f"threshold : float, default={DUPLICATE_THRESHOLD}\n" in function.__doc__
        assert inspect.signature(function).parameters["threshold"].default == DUPLICATE_THRESHOLD
    assert f"({DUPLICATE_THRESHOLD}, a cosine similarity of at least" in ImageIndex.__doc__
