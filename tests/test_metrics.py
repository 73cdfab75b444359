"""Scores of clusterings and features."""

import copy
import sys

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline

from skclusterfit import ClusterFitTransformer
from skclusterfit.metrics import (
    RepresentationReport,
    cluster_accuracy,
    knn_score,
    linear_probe_score,
    representation_report,
)


def test_cluster_accuracy_matches_clusters_to_classes():
    truth = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    assert cluster_accuracy(truth, truth) == 1.0
    assert cluster_accuracy(truth, (truth + 1) % 3) == 1.0  # renamed clusters
    assert cluster_accuracy(truth, np.zeros(8)) == 3 / 8  # one cluster matches one class
    # More clusters than classes: the unmatched ones count as errors.
    assert cluster_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == 0.5
    with pytest.raises(ValueError, match="same length"):
        cluster_accuracy([0, 1], [0, 1, 2])


def test_probes_separate_informative_from_random_features(digits):
    X, y = digits
    noise = np.random.RandomState(0).rand(*X.shape)
    train, test = slice(0, 1000), slice(1000, None)
    assert linear_probe_score(X[train], y[train], X[test], y[test]) > 0.9
    assert linear_probe_score(noise[train], y[train], noise[test], y[test]) < 0.2
    assert knn_score(X[train], y[train], X[test], y[test]) > 0.9
    assert knn_score(noise[train], y[train], noise[test], y[test]) < 0.2


def test_few_shot_score_draws_n_per_class(digits):
    from skclusterfit.metrics import few_shot_score

    X, y = digits
    five = few_shot_score(X[:1000], y[:1000], X[1000:], y[1000:], n_per_class=5, n_draws=5)
    again = few_shot_score(X[:1000], y[:1000], X[1000:], y[1000:], n_per_class=5, n_draws=5)
    thirty = few_shot_score(X[:1000], y[:1000], X[1000:], y[1000:], n_per_class=30, n_draws=5)
    assert five == again  # seeded
    assert 0.6 < five < thirty < 1.0


# --- representation_report ---------------------------------------------------


@pytest.fixture(scope="module")
def fitted(small_digits):
    """A transformer fitted on 300 digits with the conftest's ``tiny`` settings."""
    X, _ = small_digits
    return ClusterFitTransformer(
        n_clusters=5, max_epochs=1, extractor_epochs=1, batch_size=64, device="cpu", random_state=0
    ).fit(X)


@pytest.fixture(scope="module")
def labelled(digits):
    """300 labelled digits that the transformer was not fitted on."""
    X, y = digits
    return X[300:600], y[300:600]


@pytest.fixture(scope="module")
def report(fitted, labelled):
    return representation_report(fitted, *labelled, cv=3, pca_components=16, random_state=0)


def test_report_has_a_row_per_representation_and_a_column_per_probe(report):
    assert list(report.scores) == ["N_cf", "N_pre", "N_cf + N_pre", "raw pixels", "PCA-16"]
    assert report.probes == ("linear", "few_shot", "knn")
    assert report.n_folds == 3 and report.n_samples == 300
    for row in report.scores.values():
        assert list(row) == ["linear", "few_shot", "knn"]
        for scores in row.values():
            assert scores.shape == (3,)
            assert np.all((scores >= 0) & (scores <= 1))
    # Digit classes are far above chance (0.1) in every representation.
    assert all(row["linear"].mean() > 0.5 for row in report.scores.values())
    assert report.notes == []

    text = str(report)
    assert repr(report) == text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("representation"))
    table = lines[header : header + 1 + len(report.scores)]
    assert table[0].split() == ["representation", "linear", "few_shot", "knn"]
    assert [line[: len(name)] for line, name in zip(table[1:], report.scores, strict=True)] == list(
        report.scores
    )
    # Aligned: each column starts at the same place on every line.
    starts = [table[0].index(probe) for probe in report.probes]
    for line, row in zip(table[1:], report.scores.values(), strict=True):
        assert [
            line.index(f"{s.mean():.3f} ± ", start)
            for s, start in zip(row.values(), starts, strict=True)
        ] == starts
    winner = report.best["linear"]
    assert winner in report.scores
    verdict = text[text.index("Verdict") :]
    assert f"linear: {winner} best at {report.scores[winner]['linear'].mean():.3f}" in verdict
    assert "(runner-up), within the fold spread" in verdict or "(runner-up), beyond" in verdict


def test_report_scores_every_representation_on_the_same_folds(fitted, labelled, report):
    X, y = labelled
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    pixels = X.astype(np.float32)
    features = fitted.transform(X)
    for name, Z in [("raw pixels", pixels), ("N_cf", features)]:
        for probe, scorer in [("linear", linear_probe_score), ("knn", knn_score)]:
            by_hand = [scorer(Z[tr], y[tr], Z[te], y[te]) for tr, te in folds]
            np.testing.assert_array_equal(report.scores[name][probe], by_hand)
    # PCA is fitted on each training fold alone.
    by_hand = []
    for tr, te in folds:
        pca = PCA(16).fit(pixels[tr])
        by_hand.append(
            linear_probe_score(pca.transform(pixels[tr]), y[tr], pca.transform(pixels[te]), y[te])
        )
    # (Equal here; the margin allows for a PCA solver that differs in the last bits.)
    np.testing.assert_allclose(report.scores["PCA-16"]["linear"], by_hand, atol=0.02)
    # Seeded: the same call gives the same scores (few-shot is the probe that draws).
    again = representation_report(
        fitted, X, y, cv=3, probes="few_shot", pca_components=16, random_state=0
    )
    for name, row in report.scores.items():
        np.testing.assert_array_equal(again.scores[name]["few_shot"], row["few_shot"])


def test_report_leaves_the_estimator_unchanged(fitted, labelled, report):
    X, y = labelled
    cf = copy.deepcopy(fitted).set_params(feature_layer="logits")
    params, state = cf.get_params(), set(vars(cf))
    logits = cf.transform(X)
    other = representation_report(
        cf, X, y, cv=3, probes="linear", pca_components=None, random_state=0
    )
    assert cf.get_params() == params and set(vars(cf)) == state
    assert cf.feature_layer == "logits"
    np.testing.assert_array_equal(cf.transform(X), logits)
    # N_cf's row is its features whatever feature_layer the estimator had.
    np.testing.assert_array_equal(other.scores["N_cf"]["linear"], report.scores["N_cf"]["linear"])
    assert list(other.scores) == ["N_cf", "N_pre", "N_cf + N_pre", "raw pixels"]


def test_controls_add_clusterfit_from_an_untrained_extractor(fitted, labelled):
    X, y = labelled
    params = fitted.get_params()
    report = representation_report(
        fitted, X, y, cv=3, probes=("linear",), pca_components=None, controls=True, random_state=0
    )
    assert list(report.scores) == [
        "N_cf",
        "N_pre",
        "N_cf + N_pre",
        "raw pixels",
        "N_cf from random N_pre",
    ]
    assert 0.5 < report.scores["N_cf from random N_pre"]["linear"].mean() <= 1
    assert fitted.get_params() == params


def test_pca_row_is_left_out_with_a_note_when_it_would_not_reduce(fitted, labelled):
    # The digits have 64 pixels: a PCA to 64 components would keep them all.
    report = representation_report(fitted, *labelled, cv=3, probes="knn", random_state=0)
    assert "PCA-64" not in report.scores
    assert any("PCA-64 left out" in note for note in report.notes)
    assert "PCA-64 left out" in str(report)
    report = representation_report(fitted, *labelled, cv=3, probes="knn", pca_components=None)
    assert (
        list(report.scores) == ["N_cf", "N_pre", "N_cf + N_pre", "raw pixels"]
        and report.notes == []
    )


def test_few_shot_draws_fewer_images_when_a_fold_has_fewer(fitted, digits):
    X, y = digits
    rows = np.concatenate([np.flatnonzero(y == c)[:12] for c in (0, 1)])
    report = representation_report(
        fitted,
        X[rows],
        y[rows],
        cv=2,
        probes=("few_shot", "knn"),
        pca_components=None,
        random_state=0,
    )
    assert report.probes == ("few_shot", "knn")
    assert any("few_shot drew 6 images per class" in note for note in report.notes)


class _Images(torch.utils.data.Dataset):
    """8x8 float images in [0, 1] with their labels, as torchvision gives them."""

    def __init__(self, X, y):
        self.images, self.labels = (X / 16).reshape(-1, 8, 8).astype(np.float32), y

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]


def test_report_reads_the_pixels_of_a_dataset_as_the_estimator_does(fitted, labelled, report):
    X, y = labelled
    from_dataset = representation_report(
        fitted, _Images(X, y), y, cv=3, probes="linear", pca_components=16, random_state=0
    )
    assert list(from_dataset.scores) == list(report.scores)
    # The same images, scaled to [0, 1]: the standardised linear probe scores alike.
    for name in report.scores:
        np.testing.assert_allclose(
            from_dataset.scores[name]["linear"], report.scores[name]["linear"], atol=0.03
        )


def _hand_built(**rows):
    return RepresentationReport({name: {"linear": scores} for name, scores in rows.items()})


def test_verdict_says_whether_the_margin_exceeds_the_fold_spread():
    beyond = _hand_built(N_cf=[0.90, 0.92, 0.94], N_pre=[0.80, 0.82, 0.84])
    assert beyond.best == {"linear": "N_cf"}
    margin, spread, exceeds = beyond.compare("N_cf", "N_pre", "linear")
    assert margin == pytest.approx(0.10) and spread == pytest.approx(np.std([0.9, 0.92, 0.94]))
    assert exceeds
    assert beyond.compare("N_pre", "N_cf", "linear").margin == pytest.approx(-0.10)
    assert beyond.verdict.splitlines()[:2] == [
        "linear: N_cf best at 0.920",
        "  +0.100 over N_pre (runner-up), beyond the fold spread (0.016)",
    ]

    # The same mean margin, with folds that disagree: within the spread.
    within = _hand_built(N_cf=[0.75, 1.00, 0.95], N_pre=[0.85, 0.80, 0.75])
    margin, spread, exceeds = within.compare("N_cf", "N_pre", "linear")
    assert margin == pytest.approx(0.10) and not exceeds
    assert "+0.100 over N_pre (runner-up), within the fold spread (0.108)" in within.verdict

    # A margin equal to the spread is not beyond it.
    assert not _hand_built(a=[0.0, 1.0], b=[0.0, 0.0]).compare("a", "b", "linear").exceeds_spread


def test_verdict_names_the_winner_its_runner_up_and_n_pre():
    report = _hand_built(
        N_cf=[0.90, 0.91, 0.92], N_pre=[0.70, 0.71, 0.72], **{"raw pixels": [0.93, 0.94, 0.95]}
    )
    assert report.best == {"linear": "raw pixels"}
    assert report.verdict.splitlines() == [
        "linear: raw pixels best at 0.940",
        "  +0.030 over N_cf (runner-up), beyond the fold spread (0.008)",
        "  +0.230 over N_pre, beyond the fold spread (0.008)",
        "N_cf against N_pre (does ClusterFit help?):",
        "  linear: +0.200 over N_pre, beyond the fold spread (0.008)",
    ]
    assert report.verdict in str(report).replace("\n  ", "\n")
    # Ties go to the representation listed first.
    assert _hand_built(b=[0.5, 0.6], a=[0.6, 0.5]).best == {"linear": "b"}


def test_report_object_checks_its_scores():
    with pytest.raises(ValueError, match="same probes"):
        RepresentationReport({"a": {"linear": [0.5]}, "b": {"knn": [0.5]}})
    with pytest.raises(ValueError, match="same number of folds"):
        RepresentationReport({"a": {"linear": [0.5, 0.6]}, "b": {"linear": [0.5]}})
    with pytest.raises(KeyError, match="No representation 'c'"):
        _hand_built(a=[0.5], b=[0.6]).compare("a", "c", "linear")


def test_to_frame_is_long_format(report):
    frame = report.to_frame()
    assert list(frame.columns) == ["representation", "probe", "fold", "score"]
    assert len(frame) == 5 * 3 * 3  # representations, probes, folds
    means = frame.groupby(["representation", "probe"])["score"].mean()
    for name, row in report.scores.items():
        for probe, scores in row.items():
            assert means[name, probe] == pytest.approx(scores.mean())


def test_to_frame_without_pandas_says_what_to_install(report, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        report.to_frame()


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(y=np.arange(10) % 2), ValueError, "one label per image"),
        (dict(y=np.zeros(300)), ValueError, "single class"),
        (dict(probes=("linear", "svm")), ValueError, "probes must be"),
        (dict(probes=()), ValueError, "probes must be"),
        (dict(cv=1), ValueError, "'cv' parameter of representation_report must be"),
        (dict(cv=40), ValueError, "cv=40 folds need at least 40 images of every class"),
        (dict(pca_components=0), ValueError, "pca_components"),
    ],
)
def test_report_refuses_bad_inputs(fitted, labelled, change, error, match):
    X, y = labelled
    kwargs = {"y": y, **change}
    with pytest.raises(error, match=match):
        representation_report(fitted, X, **kwargs)


def test_report_needs_a_fitted_clusterfit_transformer(fitted, labelled):
    X, y = labelled
    with pytest.raises(NotFittedError):
        representation_report(ClusterFitTransformer(), X, y)
    with pytest.raises(TypeError, match="needs a fitted ClusterFitTransformer; got KMeans"):
        representation_report(KMeans(), X, y)
    with pytest.raises(TypeError, match="pass its ClusterFitTransformer step"):
        representation_report(make_pipeline(fitted), X, y)


# --- probe_scores and baselines -----------------------------------------------


def test_probe_scores_are_the_single_probes(digits):
    from skclusterfit.metrics import few_shot_score, probe_scores

    X, y = digits
    data = (X[:1000], y[:1000], X[1000:], y[1000:])
    scores = probe_scores(*data, random_state=0)
    assert list(scores) == ["linear", "few_shot", "knn"]
    assert scores == {
        "linear": linear_probe_score(*data),
        "few_shot": few_shot_score(*data, random_state=0),
        "knn": knn_score(*data),
    }
    assert probe_scores(*data, probes="knn", n_neighbors=5) == {
        "knn": knn_score(*data, n_neighbors=5)
    }
    with pytest.raises(ValueError, match="probes must be distinct names"):
        probe_scores(*data, probes=("linear", "linear"))


def test_benchmark_labels_of_the_probes_are_those_of_the_result_files():
    from skclusterfit._testing import probe_label

    assert [probe_label(p) for p in ("linear", "few_shot", "knn")] == ["linear", "10-shot", "20-NN"]


def test_features_at_a_layer_leave_the_model_unchanged(fitted, labelled):
    from skclusterfit._testing import at_layer

    X, _ = labelled
    before = fitted.get_params()
    extractor = at_layer(fitted, "extractor").transform(X)
    assert fitted.get_params() == before
    by_set_params = copy.deepcopy(fitted).set_params(feature_layer="extractor").transform(X)
    np.testing.assert_array_equal(extractor, by_set_params)


def test_baselines_fitted_are_used_as_they_are_unfitted_are_fitted_in_each_fold(
    fitted, labelled, report, digits
):
    X, y = labelled
    other = digits[0][900:]
    frozen = PCA(16, random_state=0).fit(other)
    fresh = PCA(16)
    components = frozen.components_.copy()
    got = representation_report(
        fitted,
        X,
        y,
        cv=3,
        pca_components=16,
        random_state=0,
        baselines={"PCA of other digits": frozen, "PCA per fold": fresh},
    )
    assert list(got.scores) == [*report.scores, "PCA of other digits", "PCA per fold"]
    assert got.baselines == ("PCA of other digits", "PCA per fold")
    # The other rows are those of the report without baselines.
    for name, row in report.scores.items():
        for probe, scores in row.items():
            np.testing.assert_array_equal(got.scores[name][probe], scores)
    # Unfitted: cloned and fitted on each training fold, as the PCA row is.
    np.testing.assert_allclose(
        got.scores["PCA per fold"]["linear"], report.scores["PCA-16"]["linear"], atol=1e-9
    )
    assert not hasattr(fresh, "components_")
    # Fitted: transform once, left unchanged.
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    Z = frozen.transform(X)
    by_hand = [linear_probe_score(Z[tr], y[tr], Z[te], y[te]) for tr, te in folds]
    np.testing.assert_array_equal(got.scores["PCA of other digits"]["linear"], by_hand)
    np.testing.assert_array_equal(frozen.components_, components)
    # The verdict compares N_cf with the best baseline on every probe.
    lines = got.verdict.splitlines()
    start = lines.index("N_cf against the best baseline (this or what I have?):")
    for line, probe in zip(lines[start + 1 :], got.probes, strict=True):
        best = max(got.baselines, key=lambda name: got.scores[name][probe].mean())
        margin = got.compare("N_cf", best, probe)
        assert line.startswith(f"  {probe}: {margin.margin:+.3f} over {best}, ")
        assert ("beyond" in line) == margin.exceeds_spread
    frame = got.to_frame()
    assert set(frame["representation"]) == set(got.scores)
    assert "this or what I have?" in str(got)


def test_a_fitted_clusterfit_model_is_a_frozen_baseline(fitted, labelled, small_digits, tiny):
    X, y = labelled
    other = ClusterFitTransformer(**{**tiny, "random_state": 1}).fit(small_digits[0])
    state = {k: v for k, v in vars(other).items() if k.endswith("_")}
    got = representation_report(
        fitted,
        X,
        y,
        cv=3,
        probes="linear",
        pca_components=None,
        random_state=0,
        baselines={"other ClusterFit": other},
    )
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    Z = other.transform(X)
    by_hand = [linear_probe_score(Z[tr], y[tr], Z[te], y[te]) for tr, te in folds]
    np.testing.assert_array_equal(got.scores["other ClusterFit"]["linear"], by_hand)
    assert state.keys() == {k for k in vars(other) if k.endswith("_")}
    assert "N_cf against the best baseline" in got.verdict


@pytest.mark.parametrize(
    "baselines, error, match",
    [
        ({"N_pre": PCA(2)}, ValueError, "a name of its own"),
        ({3: PCA(2)}, ValueError, "a name of its own"),
        ({"model": "PCA"}, TypeError, "must be a scikit-learn transformer"),
        ({"model": np.mean}, TypeError, "must be a scikit-learn transformer"),
        ([PCA(2)], ValueError, "'baselines' parameter"),
    ],
)
def test_report_refuses_bad_baselines(fitted, labelled, baselines, error, match):
    X, y = labelled
    with pytest.raises(error, match=match):
        representation_report(fitted, X, y, cv=3, probes="linear", baselines=baselines)


def test_a_baseline_with_the_wrong_number_of_rows_is_refused(fitted, labelled):
    from sklearn.preprocessing import FunctionTransformer

    X, y = labelled
    halves = FunctionTransformer(lambda A: A[: len(A) // 2])
    with pytest.raises(ValueError, match=r"gave \d+ rows for \d+ images"):
        representation_report(fitted, X, y, cv=3, probes="linear", baselines={"half": halves})
