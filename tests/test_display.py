"""ClusterDisplay: a grid of sample images of each cluster."""

import sys

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

from skclusterfit import ClusterFitTransformer
from skclusterfit.metrics import ClusterDisplay

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def on_files(digit_files):
    """A tiny fit on the digits' image files."""
    paths, _ = digit_files
    return ClusterFitTransformer(
        n_clusters=4, max_epochs=1, extractor_epochs=1, batch_size=64, device="cpu", random_state=0
    ).fit(paths)


def test_a_row_per_cluster_with_its_size(on_files, digit_files):
    _, X = digit_files
    labels = on_files.predict(X)
    display = ClusterDisplay.from_estimator(on_files, X, n_images=5)
    shown = np.flatnonzero(np.bincount(labels, minlength=4))
    np.testing.assert_array_equal(display.clusters, shown)
    np.testing.assert_array_equal(display.sizes, np.bincount(labels)[shown])
    assert display.ax_.shape == (len(shown), 5)
    assert display.figure_ is display.ax_[0, 0].figure
    for row, (cluster, size) in enumerate(zip(display.clusters, display.sizes, strict=True)):
        title = display.ax_[row, 0].get_title(loc="left")
        assert title.startswith(f"cluster {cluster}: {size} image")
        # Each row shows images of its cluster, the surest first.
        indices, confidences = display.indices[row], display.confidences[row]
        assert len(indices) == min(5, size) == len(display.images[row])
        assert np.all(labels[indices] == cluster)
        assert np.all(np.diff(confidences) <= 0) and np.all((confidences > 0) & (confidences <= 1))
        drawn = [cell for cell in display.ax_[row] if cell.get_images()]
        assert len(drawn) == len(indices)


def test_nearest_are_the_images_n_cf_is_surest_of(on_files, digit_files):
    from skclusterfit._testing import at_layer

    _, X = digit_files
    logits = at_layer(on_files, "logits").transform(X)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    display = ClusterDisplay.from_estimator(on_files, X, n_images=3, clusters=[1])
    members = np.flatnonzero(logits.argmax(1) == 1)
    surest = members[np.argsort(-p[members, 1], kind="stable")][:3]
    np.testing.assert_array_equal(display.indices[0], surest)
    np.testing.assert_allclose(display.confidences[0], p[surest, 1], rtol=1e-5)


def test_clusters_are_shown_in_the_order_asked_random_draws_are_seeded(on_files, digit_files):
    _, X = digit_files
    labels = on_files.predict(X)
    counts = np.bincount(labels, minlength=4)
    asked = [int(np.argmax(counts)), int(np.argmin(counts))]
    display = ClusterDisplay.from_estimator(
        on_files, X, n_images=4, clusters=asked, order="random", random_state=0
    )
    np.testing.assert_array_equal(display.clusters, asked)
    assert display.ax_.shape[0] == 2
    assert (
        display.ax_[1, 0]
        .get_title(loc="left")
        .startswith(f"cluster {asked[1]}: {counts[asked[1]]} ")
    )
    again = ClusterDisplay.from_estimator(
        on_files, X, n_images=4, clusters=asked, order="random", random_state=0
    )
    for first, second in zip(display.indices, again.indices, strict=True):
        np.testing.assert_array_equal(first, second)
        assert len(set(first)) == len(first)


def test_image_files_are_shown_as_the_estimator_reads_them(on_files, digit_files):
    paths, X = digit_files
    from_paths = ClusterDisplay.from_estimator(on_files, paths, n_images=2)
    from_arrays = ClusterDisplay.from_estimator(on_files, X, n_images=2)
    np.testing.assert_array_equal(from_paths.sizes, from_arrays.sizes)
    for row, images in enumerate(from_paths.images):
        indices = from_paths.indices[row]
        assert images.shape == (len(indices), 8, 8, 1)
        np.testing.assert_allclose(images[..., 0], X[indices].reshape(-1, 8, 8) / 255, atol=1e-6)


def test_drawn_into_given_axes(on_files, digit_files):
    _, X = digit_files
    fig, ax = plt.subplots()
    display = ClusterDisplay.from_estimator(on_files, X, n_images=3, clusters=[0, 2], ax=ax)
    assert display.figure_ is fig and display.ax_.shape == (2, 3)
    _, grid = plt.subplots(2, 3)
    assert (
        ClusterDisplay.from_estimator(on_files, X, n_images=3, clusters=[0, 2], ax=grid).ax_
        is not None
    )
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        display.plot(ax=grid[:1], n_columns=3)


def test_the_grid_has_the_columns_asked_for_whatever_the_clusters_hold():
    # Rows of 1 and 0 images: the grid's shape follows from n_columns, not from them.
    images = [np.zeros((1, 8, 8, 1)), np.zeros((0, 8, 8, 1))]
    display = ClusterDisplay(images, [0, 1], [1, 0]).plot(n_columns=6)
    assert display.ax_.shape == (2, 6)
    assert [len([c for c in row if c.get_images()]) for row in display.ax_] == [1, 0]
    assert ClusterDisplay(images, [0, 1], [1, 0]).plot().ax_.shape == (2, 1)
    with pytest.raises(ValueError, match="n_columns=1 is fewer than the 2 images"):
        ClusterDisplay([np.zeros((2, 8, 8, 1))], [0], [2]).plot(n_columns=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(clusters=[4]), r"distinct cluster ids in \[0, 4\)"),
        (dict(clusters=[1, 1]), "distinct cluster ids"),
        (dict(clusters=[]), "distinct cluster ids"),
        (dict(n_images=0), "'n_images' parameter"),
        (dict(order="centre"), "'order' parameter"),
    ],
)
def test_bad_arguments_are_refused(on_files, digit_files, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClusterDisplay.from_estimator(on_files, digit_files[1], **kwargs)


def test_needs_a_fitted_clusterfit_transformer(on_files, digit_files):
    _, X = digit_files
    with pytest.raises(NotFittedError):
        ClusterDisplay.from_estimator(ClusterFitTransformer(), X)
    with pytest.raises(TypeError, match="pass its ClusterFitTransformer step"):
        ClusterDisplay.from_estimator(make_pipeline(on_files), X)


def test_without_matplotlib_says_what_to_install(on_files, digit_files, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'skclusterfit\[plot\]'"):
        ClusterDisplay.from_estimator(on_files, digit_files[1])
