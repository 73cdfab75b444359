"""Does ClusterFit help on the user's own labelled images?

:func:`representation_report` cross-validates the probes on ClusterFit's
features, the extractor's, the raw pixels, a PCA of them and any baselines the
user names, all on the same folds, and returns a :class:`RepresentationReport`.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted

from .._inputs import images_at
from ._layers import at_layer, check_clusterfit, pixels
from ._probes import FEW_SHOTS, NEIGHBOURS, PROBES, check_probes, probe_scores
from ._report import BOTH, CONTROL, N_CF, N_PRE, PIXELS, RepresentationReport


@validate_params(
    {
        "estimator": "no_validation",  # checked below, with a hint for a pipeline
        "X": "no_validation",  # as transform takes it; checked there
        "y": ["array-like"],
        "cv": [Interval(numbers.Integral, 2, None, closed="left")],
        "probes": [StrOptions(set(PROBES)), list, tuple],
        "pca_components": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "baselines": [dict, None],
        "controls": ["boolean"],
        "random_state": ["random_state"],
    },
    # Baselines and the control are fitted in here: their own checks stay on.
    prefer_skip_nested_validation=False,
)
def representation_report(
    estimator,
    X,
    y,
    *,
    cv=5,
    probes=PROBES,
    pca_components=64,
    baselines=None,
    controls=False,
    random_state=None,
) -> RepresentationReport:
    """Does ClusterFit help on my data? Probe N_cf, N_pre, pixels and baselines.

    Cross-validates simple classifiers (probes) on several representations of
    the same labelled images ``X, y``, all with the same stratified folds, and
    says which representation reads the classes best and by how much:

    - ``"N_cf"``: ClusterFit's features, ``estimator.transform`` with
      ``feature_layer="features"``;
    - ``"N_pre"``: the extractor's features (``feature_layer="extractor"``),
      with every other parameter of ``estimator`` as it is set;
    - ``"N_cf + N_pre"``: the two side by side, what
      ``feature_layer="features+extractor"`` returns;
    - ``"raw pixels"``: ``X`` flattened to float32 (for image files and
      Datasets, the pixels ``estimator`` reads: resized and converted to the
      size and colour mode found in ``fit``, scaled to [0, 1]);
    - ``"PCA-<pca_components>"``: a PCA of the raw pixels, fitted on each
      training fold alone;
    - one row per entry of ``baselines``: the user's own transformers (see
      ``baselines``);
    - with ``controls=True``, ``"N_cf from random N_pre"``: ClusterFit run
      from an untrained extractor (see ``controls``).

    The networks and fitted baselines are fixed, so each of their
    representations is computed once for all of ``X``; only PCA, unfitted
    baselines and the probes are fitted inside the folds. ``estimator`` and
    the baselines are left unchanged.

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
    probes : str or sequence of {"linear", "few_shot", "knn"}, \
            default=("linear", "few_shot", "knn")
        The probes, each trained on the training folds and scored on the
        held-out fold (see :func:`probe_scores`): ``"linear"``,
        :func:`linear_probe_score`; ``"few_shot"``, :func:`few_shot_score`
        with 10 labelled images per class (fewer if a training fold holds
        fewer of some class; a note says so), draws seeded by
        ``random_state``, the same for every representation; ``"knn"``,
        :func:`knn_score` (20 neighbours, or as many as the training fold
        has).
    pca_components : int or None, default=64
        Components of the PCA row; ``None`` leaves it out, and so does a
        number no smaller than the pixels per image or larger than a training
        fold (a note says why).
    baselines : dict of str to transformer, default=None
        Representations to compare ClusterFit with, row name -> scikit-learn
        transformer (a frozen ImageNet network wrapped as one, a PCA, another
        ClusterFitTransformer used as a fixed embedder...). Each takes ``X``
        as given here. A fitted transformer (by
        :func:`~sklearn.utils.validation.check_is_fitted`) is used as it is:
        ``transform(X)``, once. An unfitted one is cloned and fitted on each
        training fold, ``fit_transform(X_train, y_train)`` (unsupervised
        transformers ignore the labels), like the PCA row; it must then take
        a subset of ``X``: rows of an array, items of a list, a
        :class:`~torch.utils.data.Subset` of a Dataset. The verdict says
        whether N_cf beats the best of them.
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
        ``random_state``, an unfitted baseline's by its own.

    Returns
    -------
    RepresentationReport
        The fold scores, printed as a table with a verdict.

    Raises
    ------
    TypeError
        When ``estimator`` is not a :class:`~skclusterfit.ClusterFitTransformer`,
        or a baseline is not a transformer.
    sklearn.exceptions.NotFittedError
        When ``estimator`` is not fitted.
    ValueError
        When ``y`` is not one label per image, holds a single class or a
        class with fewer than ``cv`` images, a baseline's name is taken or
        its output is not one row per image, or a parameter is invalid.

    See Also
    --------
    probe_scores : The probes on one split.

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
    >>> from sklearn.decomposition import PCA
    >>> from skclusterfit import ClusterFitTransformer
    >>> from skclusterfit.metrics import representation_report
    >>> X, y = load_digits(return_X_y=True)
    >>> cf = ClusterFitTransformer(n_clusters=5, max_epochs=1, extractor_epochs=1,
    ...                            random_state=0).fit(X[:300])
    >>> report = representation_report(cf, X[300:600], y[300:600], cv=3,
    ...                                pca_components=16, random_state=0,
    ...                                baselines={"PCA-8 of other digits": PCA(8).fit(X[900:])})
    >>> list(report.scores)
    ['N_cf', 'N_pre', 'N_cf + N_pre', 'raw pixels', 'PCA-16', 'PCA-8 of other digits']
    >>> report.probes
    ('linear', 'few_shot', 'knn')
    >>> report.scores["N_cf"]["linear"].shape
    (3,)
    >>> report.best["linear"] in report.scores
    True
    >>> report.to_frame().shape  # 6 representations x 3 probes x 3 folds
    (54, 4)

    ``print(report)`` shows the table and the verdict (see the User Guide).
    """
    check_clusterfit(estimator, "representation_report")
    probes = check_probes(probes)
    y = _check_labels(X, y, cv)
    folds = list(StratifiedKFold(cv, shuffle=True, random_state=random_state).split(y, y))
    seeds = check_random_state(random_state).randint(np.iinfo(np.int32).max, size=cv + 1)
    notes = []

    # name -> (data, transformer fitted in each fold or None): features of every
    # image, or what an unfitted transformer is fitted and applied on in each fold.
    rows = {
        N_CF: (at_layer(estimator, "features").transform(X), None),
        N_PRE: (at_layer(estimator, "extractor").transform(X), None),
    }
    rows[BOTH] = (np.hstack([rows[N_CF][0], rows[N_PRE][0]]), None)
    raw = pixels(estimator, X)
    rows[PIXELS] = (raw, None)
    smallest_fold = min(len(train) for train, _ in folds)
    if pca_components is not None:
        if pca_components < raw.shape[1] and pca_components <= smallest_fold:
            rows[f"PCA-{pca_components}"] = (raw, PCA(pca_components, random_state=int(seeds[-1])))
        else:
            notes.append(
                f"PCA-{pca_components} left out: it needs fewer components than the "
                f"{raw.shape[1]} pixels per image, and no more than the {smallest_fold} "
                f"images of the smallest training fold."
            )
    for name, baseline in _check_baselines(baselines, [*rows, CONTROL]).items():
        if _is_fitted(baseline):
            rows[name] = (_features(baseline.transform(X), len(y), name), None)
        else:
            rows[name] = (X, baseline)
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
    for name, (data, transformer) in rows.items():
        scores[name] = {probe: [] for probe in probes}
        for fold, (train, test) in enumerate(folds):
            if transformer is None:
                Z_train, Z_test = data[train], data[test]
            else:
                fitted = clone(transformer)
                Z_train = fitted.fit_transform(images_at(data, train), y[train])
                Z_train = _features(Z_train, len(train), name)
                Z_test = _features(fitted.transform(images_at(data, test)), len(test), name)
            found = probe_scores(
                Z_train,
                y[train],
                Z_test,
                y[test],
                probes=probes,
                n_per_class=shots,
                n_neighbors=min(NEIGHBOURS, len(train)),
                random_state=int(seeds[fold]),
            )
            for probe, score in found.items():
                scores[name][probe].append(score)
    return RepresentationReport(
        scores, n_samples=len(y), notes=notes, baselines=tuple(baselines or ())
    )


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


def _check_baselines(baselines, taken: list) -> dict:
    """``baselines`` (None: none), checked: names free, values transformers."""
    baselines = {} if baselines is None else baselines
    for name, baseline in baselines.items():
        if not isinstance(name, str) or name in taken:
            raise ValueError(
                f"Each baseline needs a name of its own (a str), other than {taken}; got {name!r}."
            )
        if not HasMethods(["fit", "transform"]).is_satisfied_by(baseline):
            raise TypeError(
                f"Baseline {name!r} must be a scikit-learn transformer (with fit and "
                f"transform); got {type(baseline).__name__}."
            )
    return baselines


def _is_fitted(transformer) -> bool:
    try:
        check_is_fitted(transformer)
    except NotFittedError:
        return False
    return True


def _features(Z, n_samples: int, name: str) -> np.ndarray:
    """A baseline's output as a 2-D float array of one row per image, or a ValueError."""
    Z = check_array(Z, dtype="numeric", input_name=f"The output of baseline {name!r}")
    if len(Z) != n_samples:
        raise ValueError(
            f"Baseline {name!r} gave {len(Z)} rows for {n_samples} images; a transformer "
            f"gives one row per image."
        )
    return Z
