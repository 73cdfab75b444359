"""Scores for clusterings and for learned features.

Features are judged as the ClusterFit paper judges them: by how well a simple
classifier trained on a labelled set reads the classes off them (a linear probe,
or a cosine k-nearest-neighbour vote), measured on held-out images.
:func:`representation_report` runs these probes, cross-validated, on ClusterFit's
features, the extractor's and the raw pixels of a labelled sample, and says
which reads the classes best.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._inputs import _streamed_kind, check_images
from ._transformer import ClusterFitTransformer

__all__ = [
    "adjusted_rand_score",
    "cluster_accuracy",
    "few_shot_score",
    "knn_score",
    "linear_probe_score",
    "normalized_mutual_info_score",
    "RepresentationReport",
    "representation_report",
]


def cluster_accuracy(labels_true, labels_pred) -> float:
    """Accuracy of cluster ids after the best one-to-one matching to classes.

    The matching maximises the number of agreeing samples (Hungarian
    algorithm); clusters left unmatched count as errors.

    Parameters
    ----------
    labels_true : array-like of shape (n_samples,)
        Ground-truth classes.
    labels_pred : array-like of shape (n_samples,)
        Cluster ids.

    Returns
    -------
    accuracy : float
        In [0, 1].

    Examples
    --------
    >>> from skclusterfit.metrics import cluster_accuracy
    >>> cluster_accuracy([0, 0, 1, 1, 2], [5, 5, 3, 3, 3])
    0.8
    """
    labels_true = np.asarray(labels_true)
    labels_pred = np.asarray(labels_pred)
    if labels_true.shape != labels_pred.shape or labels_true.ndim != 1:
        raise ValueError("labels_true and labels_pred must be 1-D arrays of the same length.")
    classes, true_ids = np.unique(labels_true, return_inverse=True)
    clusters, pred_ids = np.unique(labels_pred, return_inverse=True)
    counts = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(counts, (pred_ids, true_ids), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(labels_true))


def linear_probe_score(X_train, y_train, X_test, y_test, *, C: float = 1.0) -> float:
    """Test accuracy of a linear classifier trained on frozen features.

    The probe standardises the features and fits a multinomial logistic
    regression on ``(X_train, y_train)``.

    Parameters
    ----------
    X_train, X_test : array-like of shape (n_samples, n_features)
        Features of the labelled training and the held-out images.
    y_train, y_test : array-like of shape (n_samples,)
        Their classes.
    C : float, default=1.0
        Inverse regularisation strength of the logistic regression.

    Returns
    -------
    accuracy : float
        Accuracy on ``(X_test, y_test)``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit.metrics import linear_probe_score
    >>> X, y = load_digits(return_X_y=True)
    >>> linear_probe_score(X[:1000], y[:1000], X[1000:], y[1000:]) > 0.85
    True
    """
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    probe.fit(X_train, y_train)
    return float(probe.score(X_test, y_test))


def knn_score(X_train, y_train, X_test, y_test, *, n_neighbors: int = 20) -> float:
    """Test accuracy of a cosine k-nearest-neighbour vote on frozen features.

    Parameters
    ----------
    X_train, y_train, X_test, y_test
        As for :func:`linear_probe_score`.
    n_neighbors : int, default=20
        Number of neighbours that vote (20, as VISSL's k-NN benchmark).

    Returns
    -------
    accuracy : float
        Share of the held-out images whose neighbours' majority class is theirs.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit.metrics import knn_score
    >>> digits = load_digits()
    >>> score = knn_score(digits.data[:1000], digits.target[:1000],
    ...                   digits.data[1000:], digits.target[1000:])
    >>> score > 0.85
    True
    """
    knn = KNeighborsClassifier(n_neighbors=n_neighbors, metric="cosine", algorithm="brute")
    knn.fit(X_train, y_train)
    return float(knn.score(X_test, y_test))


def few_shot_score(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    n_per_class: int = 10,
    n_draws: int = 10,
    random_state=0,
) -> float:
    """Mean test accuracy of linear probes trained on a few labelled images per class.

    Each draw picks ``n_per_class`` training samples of every class at random,
    fits :func:`linear_probe_score`'s probe on them and scores it on the whole
    test set. Few-shot probes separate representations that a probe trained on
    every label finds equally good.

    Parameters
    ----------
    X_train, X_test : array-like of shape (n_samples, n_features)
        Features of the labelled pool and of the held-out images.
    y_train, y_test : array-like of shape (n_samples,)
        Their classes; every class needs ``n_per_class`` training samples.
    n_per_class : int, default=10
        Labelled samples per class in each draw.
    n_draws : int, default=10
        Number of draws averaged.
    random_state : int, RandomState instance or None, default=0
        Seeds the draws.

    Returns
    -------
    accuracy : float
        Mean accuracy over the draws.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit.metrics import few_shot_score
    >>> X, y = load_digits(return_X_y=True)
    >>> 0.7 < few_shot_score(X[:1000], y[:1000], X[1000:], y[1000:], n_per_class=5) < 1
    True
    """
    X_train, y_train = np.asarray(X_train), np.asarray(y_train)
    rng = check_random_state(random_state)
    classes = np.unique(y_train)
    scores = []
    for _ in range(n_draws):
        chosen = np.concatenate(
            [rng.choice(np.flatnonzero(y_train == c), n_per_class, replace=False) for c in classes]
        )
        scores.append(linear_probe_score(X_train[chosen], y_train[chosen], X_test, y_test))
    return float(np.mean(scores))


# --------------------------------------------------------------------------
# representation_report: does ClusterFit help on the user's own labelled data?

PROBES = ("linear", "knn", "few_shot")
#: Labelled images per class in each draw of the few-shot probe (fewer when a
#: training fold holds fewer of some class).
FEW_SHOTS = 10
N_CF, N_PRE, PIXELS, CONTROL = "N_cf", "N_pre", "raw pixels", "N_cf from random N_pre"


class _Comparison(NamedTuple):
    """Mean difference of two rows of a :class:`RepresentationReport` on one probe.

    Attributes
    ----------
    margin : float
        Mean score of the first row minus that of the second.
    spread : float
        The larger of the two rows' standard deviations over folds.
    exceeds_spread : bool
        Whether ``abs(margin) > spread``.
    """

    margin: float
    spread: float
    exceeds_spread: bool


@dataclass(repr=False, eq=False)
class RepresentationReport:
    """Cross-validated probe scores of several representations of the same images.

    Made by :func:`representation_report`; printing it (``str`` or ``repr``)
    gives an aligned table, one row per representation and one column per
    probe, each cell the mean accuracy over the folds ``± std [min, max]``,
    followed by the :attr:`verdict` and the notes.

    Parameters
    ----------
    scores : dict
        ``scores[representation][probe]`` is the array of the probe's accuracy
        on each held-out fold. Every representation must have the same probes
        and the same number of folds, scored on the same folds.
    n_samples : int or None, default=None
        Number of labelled images cross-validated (shown in the title).
    notes : list of str, default=[]
        Representations left out and other remarks, printed under the table.

    Attributes
    ----------
    scores : dict of str to dict of str to ndarray of shape (n_folds,)
        As given, the arrays as float64.
    probes : tuple of str
        The probes, in column order.
    n_folds : int
        Number of cross-validation folds.
    best : dict of str to str
        For each probe, the representation with the highest mean score (the
        first listed among ties).
    verdict : str
        For each probe, the best representation, then its margin over the
        runner-up and over ``"N_pre"``, each said to be within or beyond the
        fold spread (see Notes); then, when the report has both, the margin
        of ``"N_cf"`` over ``"N_pre"`` on every probe, the answer to "does
        ClusterFit help?".

    See Also
    --------
    representation_report : Builds the report.

    Notes
    -----
    **The verdict's rule.** A margin (the difference of two rows' mean scores)
    counts as beyond the fold spread when it is larger than both rows'
    standard deviations over folds (numpy's, ``ddof=0``); otherwise it is
    within it. The rule is deliberately cautious: the folds are the same for
    every row, and part of a row's spread is the folds' own difficulty,
    which every row shares. A margin within the spread is no evidence of a
    difference, not evidence of none; more labelled images, or more folds,
    narrow it. :meth:`compare` applies the rule to any two rows.

    Examples
    --------
    >>> from skclusterfit.metrics import RepresentationReport
    >>> report = RepresentationReport(
    ...     {"N_cf": {"linear": [0.92, 0.95, 0.94]},
    ...      "N_pre": {"linear": [0.85, 0.88, 0.86]},
    ...      "raw pixels": {"linear": [0.91, 0.95, 0.92]}})
    >>> report.best
    {'linear': 'N_cf'}
    >>> report.compare("N_cf", "raw pixels", "linear").exceeds_spread
    False
    >>> print(report.verdict)
    linear: N_cf best at 0.937
      +0.010 over raw pixels (runner-up), within the fold spread (0.017)
      +0.073 over N_pre, beyond the fold spread (0.012)
    N_cf against N_pre (does ClusterFit help?):
      linear: +0.073 over N_pre, beyond the fold spread (0.012)
    """

    scores: dict
    n_samples: int | None = None
    notes: list = field(default_factory=list)

    def __post_init__(self):
        if not isinstance(self.scores, dict) or not self.scores:
            raise ValueError("scores must be a non-empty dict: representation -> probe -> scores.")
        self.scores = {
            str(name): {str(probe): np.asarray(s, dtype=np.float64) for probe, s in row.items()}
            for name, row in self.scores.items()
        }
        probes = tuple(next(iter(self.scores.values())))
        if not probes or any(tuple(row) != probes for row in self.scores.values()):
            raise ValueError("Every representation must have scores of the same probes.")
        shapes = {s.shape for row in self.scores.values() for s in row.values()}
        if len(shapes) != 1 or len(shape := shapes.pop()) != 1 or shape[0] == 0:
            raise ValueError(
                "Every score must be a 1-D array of the same number of folds, at least one."
            )
        self.notes = list(self.notes)

    @property
    def probes(self) -> tuple:
        """The probes, in column order."""
        return tuple(next(iter(self.scores.values())))

    @property
    def n_folds(self) -> int:
        """Number of cross-validation folds."""
        return len(next(iter(next(iter(self.scores.values())).values())))

    @property
    def best(self) -> dict:
        """The representation with the highest mean score, for each probe (ties: the first)."""
        return {probe: self._ranked(probe)[0] for probe in self.probes}

    def _ranked(self, probe: str) -> list:
        """Representations by decreasing mean score on ``probe`` (ties in row order)."""
        means = {name: row[probe].mean() for name, row in self.scores.items()}
        return sorted(means, key=lambda name: -means[name])

    def compare(self, first: str, second: str, probe: str):
        """How far apart two representations are on one probe, by the verdict's rule.

        Parameters
        ----------
        first, second : str
            Representations (keys of :attr:`scores`).
        probe : str
            One of :attr:`probes`.

        Returns
        -------
        comparison : named tuple
            ``(margin, spread, exceeds_spread)``: the mean score of ``first``
            minus that of ``second``; the larger of their standard deviations
            over folds; and whether the margin's size is larger than that
            spread.
        """
        for name in (first, second):
            if name not in self.scores:
                raise KeyError(f"No representation {name!r}; the report has {list(self.scores)}.")
        if probe not in self.probes:
            raise KeyError(f"No probe {probe!r}; the report has {list(self.probes)}.")
        a, b = self.scores[first][probe], self.scores[second][probe]
        margin = float(a.mean() - b.mean())
        spread = float(max(a.std(), b.std()))
        return _Comparison(margin, spread, bool(abs(margin) > spread))

    @property
    def verdict(self) -> str:
        """Each probe's best representation and its margins, within or beyond the fold spread.

        The margins are the best one's over the runner-up and over
        ``"N_pre"``; then, when the report has both, those of ``"N_cf"`` over
        ``"N_pre"`` on every probe, the answer to "does ClusterFit help?"
        (see Notes for the rule).
        """
        lines = []
        for probe in self.probes:
            ranked = self._ranked(probe)
            winner = ranked[0]
            lines.append(f"{probe}: {winner} best at {self.scores[winner][probe].mean():.3f}")
            if len(ranked) == 1:
                continue
            lines.append("  " + self._margin(winner, ranked[1], probe, " (runner-up)"))
            if N_PRE in self.scores and N_PRE not in ranked[:2]:
                lines.append("  " + self._margin(winner, N_PRE, probe))
        if N_CF in self.scores and N_PRE in self.scores:
            lines.append(f"{N_CF} against {N_PRE} (does ClusterFit help?):")
            lines += [f"  {probe}: " + self._margin(N_CF, N_PRE, probe) for probe in self.probes]
        return "\n".join(lines)

    def _margin(self, first: str, second: str, probe: str, role: str = "") -> str:
        margin, spread, exceeds = self.compare(first, second, probe)
        where = "beyond" if exceeds else "within"
        return f"{margin:+.3f} over {second}{role}, {where} the fold spread ({spread:.3f})"

    def __str__(self) -> str:
        table = [["representation", *self.probes]]
        for name, row in self.scores.items():
            table.append(
                [name]
                + [
                    f"{s.mean():.3f} ± {s.std():.3f} [{s.min():.3f}, {s.max():.3f}]"
                    for s in row.values()
                ]
            )
        widths = [max(len(cells[i]) for cells in table) for i in range(len(table[0]))]
        on = f" of {self.n_samples} labelled images" if self.n_samples is not None else ""
        lines = [
            f"Probe accuracy on held-out folds ({self.n_folds}-fold cross-validation{on}),",
            "mean ± std [min, max] over folds:",
            "",
            *("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in table),
            "",
            "Verdict (a margin is beyond the fold spread when larger than both rows' std):",
            *(f"  {line}" for line in self.verdict.splitlines()),
        ]
        if self.notes:
            lines += ["", "Notes:", *(f"  - {note}" for note in self.notes)]
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        return str(self)

    def to_frame(self):
        """The fold scores as a pandas DataFrame in long format.

        Returns
        -------
        pandas.DataFrame
            One row per representation, probe and fold, with columns
            ``representation``, ``probe``, ``fold`` (0 to ``n_folds - 1``) and
            ``score``. ``df.groupby(["representation", "probe"], sort=False)
            ["score"].agg(["mean", "std", "min", "max"])`` summarises it (pandas'
            ``std`` has ``ddof=1``, the table's ``ddof=0``).
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "RepresentationReport.to_frame needs pandas: pip install pandas."
            ) from None
        records = [
            {"representation": name, "probe": probe, "fold": fold, "score": float(score)}
            for name, row in self.scores.items()
            for probe, scores in row.items()
            for fold, score in enumerate(scores)
        ]
        return pd.DataFrame.from_records(
            records, columns=["representation", "probe", "fold", "score"]
        )


def representation_report(
    estimator,
    X,
    y,
    *,
    cv=5,
    probes=PROBES,
    pca_components=64,
    controls=False,
    random_state=None,
) -> RepresentationReport:
    """Does ClusterFit help on my data? Probe N_cf, N_pre and pixels on labelled images.

    Cross-validates simple classifiers (probes) on several representations of
    the same labelled images ``X, y``, all with the same stratified folds, and
    says which representation reads the classes best and by how much:

    - ``"N_cf"``: ClusterFit's features, ``estimator.transform`` with
      ``feature_layer="features"``;
    - ``"N_pre"``: the extractor's features (``feature_layer="extractor"``),
      with every other parameter of ``estimator`` as it is set;
    - ``"raw pixels"``: ``X`` flattened to float32 (for image files and
      Datasets, the pixels ``estimator`` reads: resized and converted to the
      size and colour mode found in ``fit``, scaled to [0, 1]);
    - ``"PCA-<pca_components>"``: a PCA of the raw pixels, fitted on each
      training fold alone;
    - with ``controls=True``, ``"N_cf from random N_pre"``: ClusterFit run
      from an untrained extractor (see ``controls``).

    The networks are fixed, so each representation is computed once for all
    of ``X``; only PCA and the probes are fitted inside the folds.
    ``estimator`` is left unchanged.

    Parameters
    ----------
    estimator : ClusterFitTransformer
        A fitted transformer.
    X : array-like, sequence of paths or torch Dataset
        Labelled images, as ``estimator.transform`` takes them; ideally
        images ``estimator`` was not fitted on.
    y : array-like of shape (n_samples,)
        Their classes: at least two, each with at least ``cv`` images.
    cv : int, default=5
        Number of folds of the stratified K-fold cross-validation (shuffled,
        seeded by ``random_state``).
    probes : sequence of {"linear", "knn", "few_shot"}, default=("linear", "knn", "few_shot")
        The probes, each trained on the training folds and scored on the
        held-out fold: ``"linear"``, :func:`linear_probe_score`; ``"knn"``,
        :func:`knn_score` (20 neighbours, or as many as the training fold
        has); ``"few_shot"``, :func:`few_shot_score` with 10 labelled images
        per class (fewer if a training fold holds fewer of some class; a note
        says so), draws seeded by ``random_state``, the same for every
        representation.
    pca_components : int or None, default=64
        Components of the PCA row; ``None`` leaves it out, and so does a
        number no smaller than the pixels per image or larger than a training
        fold (a note says why).
    controls : bool, default=False
        Also run ClusterFit from an untrained N_pre: ``clone(estimator)`` with
        ``extractor="random"`` is fitted on ``X`` without its labels, that is,
        on the labelled sample given here, not on the data ``estimator`` was
        fitted on, and its N_cf features are probed. It tells how much of
        N_cf's score the trained N_pre brings. Having been fitted on the very
        images the probes score, the control has an edge that ``estimator``
        lacks when it was fitted on other images; weigh that when it wins.
        This fits a ClusterFit model, as long as ``estimator``'s own fit would
        take on ``X``.
    random_state : int, RandomState instance or None, default=None
        Seeds the folds, the few-shot draws and the PCA; ``None`` draws new
        ones at every call. The control's fit is seeded by ``estimator``'s own
        ``random_state``.

    Returns
    -------
    RepresentationReport
        The fold scores, printed as a table with a verdict.

    Raises
    ------
    TypeError
        When ``estimator`` is not a :class:`~skclusterfit.ClusterFitTransformer`.
    sklearn.exceptions.NotFittedError
        When it is not fitted.
    ValueError
        When ``y`` is not one label per image, holds a single class or a
        class with fewer than ``cv`` images, or a parameter is invalid.

    See Also
    --------
    linear_probe_score, knn_score, few_shot_score : The probes.

    Notes
    -----
    The verdict counts a margin as beyond the fold spread when it is larger
    than the standard deviations over folds of both rows compared (see
    :class:`RepresentationReport`). Probes judge the features of images
    from the same distribution as ``X``; how well they transfer to other
    data is another question, which this function answers only when given
    that data.

    Raw pixels of image files and Datasets are all held in memory, as float32;
    so are the features of every representation.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit import ClusterFitTransformer
    >>> from skclusterfit.metrics import representation_report
    >>> X, y = load_digits(return_X_y=True)
    >>> cf = ClusterFitTransformer(n_clusters=5, max_epochs=1, extractor_epochs=1,
    ...                            random_state=0).fit(X[:300])
    >>> report = representation_report(cf, X[300:600], y[300:600], cv=3,
    ...                                pca_components=16, random_state=0)
    >>> list(report.scores)
    ['N_cf', 'N_pre', 'raw pixels', 'PCA-16']
    >>> report.probes
    ('linear', 'knn', 'few_shot')
    >>> report.scores["N_cf"]["linear"].shape
    (3,)
    >>> report.best["linear"] in report.scores
    True
    >>> report.to_frame().shape  # 4 representations x 3 probes x 3 folds
    (36, 4)

    ``print(report)`` shows the table and the verdict (see the User Guide).
    """
    _check_estimator(estimator)
    probes = _check_probes(probes)
    if not isinstance(cv, Integral) or isinstance(cv, bool) or cv < 2:
        raise ValueError(f"cv must be an int of at least 2 (the number of folds); got {cv!r}.")
    if pca_components is not None and (
        not isinstance(pca_components, Integral)
        or isinstance(pca_components, bool)
        or pca_components < 1
    ):
        raise ValueError(f"pca_components must be a positive int or None; got {pca_components!r}.")
    y = _check_labels(X, y, cv)
    folds = list(StratifiedKFold(cv, shuffle=True, random_state=random_state).split(y, y))
    seeds = check_random_state(random_state).randint(np.iinfo(np.int32).max, size=cv + 1)
    notes = []

    rows = {  # name -> (features of every image, PCA fitted in each fold or None)
        N_CF: (_as_layer(estimator, "features").transform(X), None),
        N_PRE: (_as_layer(estimator, "extractor").transform(X), None),
    }
    pixels = _pixels(estimator, X)
    rows[PIXELS] = (pixels, None)
    smallest_fold = min(len(train) for train, _ in folds)
    if pca_components is not None:
        if pca_components < pixels.shape[1] and pca_components <= smallest_fold:
            pca = PCA(pca_components, random_state=int(seeds[-1]))
            rows[f"PCA-{pca_components}"] = (pixels, pca)
        else:
            notes.append(
                f"PCA-{pca_components} left out: it needs fewer components than the "
                f"{pixels.shape[1]} pixels per image, and no more than the {smallest_fold} "
                f"images of the smallest training fold."
            )
    if controls:
        control = clone(estimator).set_params(
            extractor="random",
            extractor_weights=None,
            feature_layer="features",
            checkpoint_dir=None,
        )
        if control.n_clusters > len(y):
            notes.append(f"The control ran with n_clusters={len(y)}, the number of images.")
            control.set_params(n_clusters=len(y))
        rows[CONTROL] = (control.fit(X).transform(X), None)

    shots = min(
        FEW_SHOTS, *(np.unique(y[train], return_counts=True)[1].min() for train, _ in folds)
    )
    if "few_shot" in probes and shots < FEW_SHOTS:
        notes.append(
            f"few_shot drew {shots} images per class, as many as the smallest class has "
            f"in some training fold."
        )

    scores = {}
    for name, (features, pca) in rows.items():
        scores[name] = {probe: [] for probe in probes}
        for fold, (train, test) in enumerate(folds):
            Z_train, Z_test = features[train], features[test]
            if pca is not None:
                Z_train = pca.fit_transform(Z_train)
                Z_test = pca.transform(Z_test)
            data = (Z_train, y[train], Z_test, y[test])
            for probe in probes:
                if probe == "linear":
                    score = linear_probe_score(*data)
                elif probe == "knn":
                    score = knn_score(*data, n_neighbors=min(20, len(train)))
                else:
                    score = few_shot_score(*data, n_per_class=shots, random_state=int(seeds[fold]))
                scores[name][probe].append(score)
    return RepresentationReport(scores, n_samples=len(y), notes=notes)


def _check_estimator(estimator) -> None:
    if not isinstance(estimator, ClusterFitTransformer):
        hint = ""
        if hasattr(estimator, "named_steps"):
            hint = " For a pipeline, pass its ClusterFitTransformer step."
        raise TypeError(
            f"representation_report needs a fitted ClusterFitTransformer; got "
            f"{type(estimator).__name__}.{hint}"
        )
    check_is_fitted(estimator)


def _check_probes(probes) -> tuple:
    probes = (probes,) if isinstance(probes, str) else tuple(probes)
    unknown = [p for p in probes if p not in PROBES]
    if unknown or not probes or len(set(probes)) != len(probes):
        raise ValueError(
            f"probes must be distinct names among {list(PROBES)}, at least one; got {probes!r}."
        )
    return probes


def _check_labels(X, y, cv: int) -> np.ndarray:
    """``y`` as an array, checked against ``X`` and the number of folds."""
    try:
        n_samples = len(X)
    except TypeError:
        raise TypeError(
            f"X must be images as transform takes them (an array, a list of image "
            f"files or a torch Dataset); got {type(X).__name__}, which has no length."
        ) from None
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_samples:
        raise ValueError(
            f"y must be a 1-D array with one label per image of X ({n_samples}); "
            f"got shape {y.shape}."
        )
    check_classification_targets(y)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"y holds a single class ({classes[0]!r}); probes need at least two.")
    if counts.min() < cv:
        raise ValueError(
            f"cv={cv} folds need at least {cv} images of every class; class "
            f"{classes[counts.argmin()]!r} has {counts.min()}. Lower cv or add images."
        )
    return y


def _as_layer(estimator, layer: str):
    """A shallow copy of the fitted ``estimator`` whose ``transform`` gives ``layer``.

    The copy shares the fitted networks; ``copy.copy`` would go through
    ``__getstate__``, which copies networks on a GPU to the CPU.
    """
    view = object.__new__(type(estimator))
    view.__dict__.update(vars(estimator))
    return view.set_params(feature_layer=layer)


def _pixels(estimator, X) -> np.ndarray:
    """``X`` as flat float32 rows; image files and Datasets as ``estimator`` reads them."""
    if _streamed_kind(X) is None:
        X = np.asarray(X)
        return X.reshape(len(X), -1).astype(np.float32)
    source = check_images(estimator, X, reset=False)
    return np.concatenate(
        [
            images.reshape(len(images), -1).numpy()
            for _, images in source.iter_batches(estimator.batch_size)
        ]
    )
