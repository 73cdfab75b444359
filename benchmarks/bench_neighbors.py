"""What ImageIndex finds: retrieval, near-duplicates and outliers, by representation.

The held-out-class protocol: D_cf is the first 5,000 Fashion-MNIST training
images of classes 0-4. Rows, each read by ``transform`` as the package reads
it (cosine distance over unit rows, ``skclusterfit.neighbors``' own search):

- pixels;
- the frozen ImageNet MobileNetV2, and ClusterFit from it (N_pre read the same way);
- RotNet, the package's default N_pre, and ClusterFit from it (the defaults);
- ClusterFit from an untrained network (the control).

Readings, each on 3 seeds:

- **precision@10**: over every test image of a target (Fashion 0-4 seen, 5-9
  held out, MNIST, digits 28x28), the share of its 10 nearest other test
  images of its class;
- **near-duplicates**: the first 2,000 Fashion 0-4 test images with edited
  copies of 400 of them mixed in (100 each: a crop of 24 of 28 pixels resized
  back, a horizontal flip, brightness x1.2, JPEG at quality 60). Groups at the
  default threshold; precision and recall of the (image, copy) pairs that share
  a group, recall by edit, and, on the same edits of D_cf's first 2,000 images
  (never the test images), the threshold of best F1 for each row;
- **outliers**: the same 2,000 test images with 100 MNIST test digits mixed
  in; ROC AUC for the digits of three scores: the distance to the 10th
  neighbour among the mixed images (``outlier_scores()`` of an index of them),
  to the 10th among D_cf's images (``outlier_scores(X)`` of an index of D_cf),
  and one minus N_cf's confidence (``outlier_scores(method="confidence")``).

Usage::

    python benchmarks/bench_neighbors.py            # 3 seeds
    python benchmarks/bench_neighbors.py --quick    # 1 seed, small sizes
"""

from __future__ import annotations

import io

import _common as common
import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

from skclusterfit import ClusterFitTransformer
from skclusterfit._testing import (
    clusters_and_confidence,
    duplicate_groups,
    searcher,
    self_neighbours,
    unit_rows,
)

EDITS = ("crop", "flip", "brightness", "JPEG")
THRESHOLDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)
# The row whose best threshold on D_cf copies (median over seeds) is the
# package default: ClusterFit as fitted by default.
DEFAULTS = "ClusterFit(RotNet), the defaults"
K_PRECISION = 10
SIZES = {False: (2000, 100, 100), True: (300, 20, 20)}  # images, copies per edit, outliers


def edited(image: np.ndarray, edit: str) -> np.ndarray:
    """A flat 28x28 uint8 image with one edit applied."""
    picture = Image.fromarray(image.reshape(28, 28))
    if edit == "crop":
        picture = picture.crop((3, 1, 27, 25)).resize((28, 28), Image.BILINEAR)
    elif edit == "flip":
        picture = picture.transpose(Image.FLIP_LEFT_RIGHT)
    elif edit == "brightness":
        return np.clip(image.astype(np.float64) * 1.2, 0, 255).astype(np.uint8)
    else:
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=60)
        picture = Image.open(buffer)
    return np.asarray(picture, dtype=np.uint8).reshape(-1)


def with_copies(images: np.ndarray, per_edit: int, seed: int):
    """``images`` followed by edited copies of some; the copies' originals and edits."""
    chosen = np.random.RandomState(seed).choice(len(images), per_edit * len(EDITS), replace=False)
    kinds = np.repeat(EDITS, per_edit)
    copies = np.stack([edited(images[i], kind) for i, kind in zip(chosen, kinds, strict=True)])
    return np.concatenate([images, copies]), chosen, kinds


def pair_scores(features: np.ndarray, originals: np.ndarray, threshold: float) -> dict:
    """Precision and recall of the (original, copy) pairs among the groups at ``threshold``."""
    n_real = len(features) - len(originals)
    unit = unit_rows(features)
    groups = duplicate_groups(searcher("sklearn", unit), unit, threshold)
    group_of = np.full(len(features), -1)
    for g, members in enumerate(groups):
        group_of[members] = g
    copies = n_real + np.arange(len(originals))
    found = (group_of[copies] >= 0) & (group_of[copies] == group_of[originals])
    n_pairs = sum(len(g) * (len(g) - 1) // 2 for g in groups)
    precision = found.sum() / n_pairs if n_pairs else 1.0
    return {"precision": float(precision), "recall": float(found.mean()), "found": found}


def auc(is_outlier: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(is_outlier, scores))


def readings(reps: tuple, targets: dict, seed: int, quick: bool, D_cf: np.ndarray) -> dict:
    """Row -> reading -> value, for one seed; ``reps`` as :func:`representations` gives."""
    reps, confidences = reps
    n, per_edit, n_outliers = SIZES[quick]
    seen = targets["Fashion 0-4 (seen classes)"][2][:n]
    dupes, originals, kinds = with_copies(seen, per_edit, seed)
    tuning, tuning_originals, _ = with_copies(D_cf[:n], per_edit, seed)
    digits = targets["MNIST"][2][:n_outliers]
    mixed = np.concatenate([seen, digits])
    is_digit = np.r_[np.zeros(len(seen)), np.ones(len(digits))]
    out = {}
    for row, features_of in reps.items():
        found = {}
        for name, (_, _, X_test, y_test) in targets.items():
            unit = unit_rows(features_of(X_test))
            _, neighbours = self_neighbours(searcher("sklearn", unit), unit, K_PRECISION)
            found[f"precision@10 {name}"] = float((y_test[neighbours] == y_test[:, None]).mean())
        test_features, tuning_features = features_of(dupes), features_of(tuning)
        for threshold in THRESHOLDS:
            at = pair_scores(test_features, originals, threshold)
            found[f"precision at {threshold}"] = at["precision"]
            found[f"recall at {threshold}"] = at["recall"]
            for kind in EDITS:
                found[f"recall {kind} at {threshold}"] = float(at["found"][kinds == kind].mean())
            tuned = pair_scores(tuning_features, tuning_originals, threshold)
            p, r = tuned["precision"], tuned["recall"]
            found[f"D_cf copies F1 at {threshold}"] = 2 * p * r / (p + r) if p + r else 0.0
        unit = unit_rows(features_of(mixed))
        scores, _ = self_neighbours(searcher("sklearn", unit), unit, 10)
        found["outliers AUC, 10th neighbour in the mix"] = auc(is_digit, scores[:, -1])
        fitted = unit_rows(features_of(D_cf))
        scores, _ = searcher("sklearn", fitted).nearest(unit, 10)
        found["outliers AUC, 10th neighbour in D_cf"] = auc(is_digit, scores[:, -1])
        if row in confidences:
            found["outliers AUC, 1 - N_cf confidence"] = auc(is_digit, -confidences[row](mixed))
        out[row] = {key: round(value, 4) for key, value in found.items()}
    return out


def representations(X, seed: int, quick: bool, seconds: dict) -> tuple:
    """Row -> features function, and row -> N_cf's confidence function for the
    ClusterFit rows, from the fits of one seed."""
    settings = common.study_settings(quick)
    base = dict(random_state=seed, max_epochs=settings[3], n_clusters=settings[4])

    def fit(name, **params):
        model, seconds[name] = common.timed(ClusterFitTransformer(**base, **params).fit, X)
        return model

    weights = common.mobilenet_weights()
    strong = fit("ClusterFit(MobileNetV2)", extractor="mobilenet_v2", extractor_weights=weights)
    default = fit("ClusterFit(RotNet)", extractor_epochs=settings[2])
    untrained = fit("ClusterFit(untrained)", extractor="random", extractor_weights=None)

    def confidence(model):
        return lambda A: clusters_and_confidence(model, A)[1]

    confidences = {
        "ClusterFit(MobileNetV2)": confidence(strong),
        "ClusterFit(RotNet), the defaults": confidence(default),
        "ClusterFit(untrained network)": confidence(untrained),
    }
    return {
        "pixels": lambda A: np.asarray(A, dtype=np.float32),
        "MobileNetV2 (ImageNet, frozen)": common.feature_layer(strong, "extractor"),
        "ClusterFit(MobileNetV2)": common.feature_layer(strong, "features"),
        "RotNet (N_pre of the defaults)": common.feature_layer(default, "extractor"),
        "ClusterFit(RotNet), the defaults": common.feature_layer(default, "features"),
        "ClusterFit(untrained network)": common.feature_layer(untrained, "features"),
    }, confidences


def main():
    args = common.arguments(__doc__).parse_args()
    settings, X, _, targets = common.held_out_study(args.quick)
    runs, fit_seconds = [], []
    for seed in settings[1]:
        seconds: dict = {}
        reps = representations(X, seed, args.quick, seconds)
        runs.append(readings(reps, targets, seed, args.quick, X))
        fit_seconds.append({k: round(v, 1) for k, v in seconds.items()})
        fields = {
            "n_images": settings[0],
            "seeds": settings[1][: len(runs)],
            "thresholds": THRESHOLDS,
            "sizes": SIZES[args.quick],
            "fit_seconds_by_row": fit_seconds,
            "readings": runs,
        }
        common.save("neighbors", args.quick, fields, markdown)


def cell(values: list) -> str:
    return "n/a" if None in values else common.spread(values)


def best_threshold(record: dict, row: str) -> float:
    """The threshold of best F1 on D_cf's edited copies for ``row``, median over seeds."""
    best = [
        max(record["thresholds"], key=lambda t: run[row][f"D_cf copies F1 at {t}"])
        for run in record["readings"]
    ]
    return float(np.median(best))


def markdown(record: dict) -> str:
    runs = record["readings"]
    rows = list(runs[0])
    n, per_edit, n_outliers = record["sizes"]
    chosen = best_threshold(record, DEFAULTS)
    lines = common.markdown_header("What ImageIndex finds, by representation", record) + [
        f"D_cf: {record['n_images']} Fashion-MNIST training images of classes 0-4; seeds "
        f"{record['seeds']}. Near-duplicates: {n} Fashion 0-4 test images with "
        f"{per_edit} edited copies each of {', '.join(EDITS)}; a pair is found when image "
        f"and copy share a group. The threshold of best F1 on the same edits of D_cf's "
        f"images is {chosen} for {DEFAULTS} (median over seeds). Outliers: the same {n} "
        f"images with {n_outliers} MNIST digits. Mean (min-max over seeds).",
        "",
    ]

    def table(title, columns, key=lambda row, column: column):
        cells = [
            [row] + [cell([run[row].get(key(row, c)) for run in runs]) for c in columns]
            for row in rows
        ]
        return [f"## {title}", "", *common.markdown_table(["representation", *columns], cells), ""]

    lines += table(
        "Retrieval: precision@10 by class", [k for k in runs[0][rows[0]] if "precision@" in k]
    )
    columns = ["precision", "recall", *(f"recall {kind}" for kind in EDITS)]
    lines += table(
        f"Near-duplicates at {chosen}", columns, lambda row, column: f"{column} at {chosen}"
    )
    own = {row: best_threshold(record, row) for row in rows}
    lines += [
        "Each row at its own best threshold on D_cf copies: "
        + "; ".join(f"{row} {own[row]}" for row in rows),
        "",
    ]
    lines += table(
        "Near-duplicates at each row's own best threshold",
        columns,
        lambda row, column: f"{column} at {own[row]}",
    )
    outliers = [k for k in runs[0][rows[-1]] if k.startswith("outliers")]
    lines += table(
        "Outliers: MNIST digits among Fashion-MNIST, ROC AUC",
        outliers,
        lambda row, column: column if column in runs[0][row] else None,
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
