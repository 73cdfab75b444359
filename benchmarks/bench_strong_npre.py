"""ClusterFit from a strong N_pre: its levers, each against the frozen network read the same way.

N_pre is torchvision's ImageNet MobileNetV2, frozen (the package upsamples
the 28x28 images to 64 pixels for it); D_cf is the first 5,000 Fashion-MNIST
training images of classes 0-4 (the held-out-class protocol); targets are
Fashion classes 0-4 (seen), 5-9 (held out), MNIST and digits 28x28, with a
linear, a 10-shot and a cosine 20-NN probe. Every row is read with the same
feature recipe (three stages, each averaged over space):

- the frozen MobileNetV2 itself (the control every lever must beat);
- ClusterFit from it with the defaults (K=100, N_cf 20 epochs);
- one change at a time: K=62, about one cluster per 80 images as in the paper;
  K=250; N_cf trained 60 epochs; N_cf given the images upscaled to 56x56
  (twice the working resolution of the compact CNN);
- the frozen network's features and N_cf's side by side (concatenated);
- ClusterFit from an untrained network (how much the ImageNet N_pre adds).

A torchvision ResNet-18 as N_cf and N_cf started from N_pre's weights
(fine-tuning on the pseudo-labels, beyond the paper) are studied by
``bench_strong_npre_networks.py``.

Usage::

    python benchmarks/bench_strong_npre.py                     # 3 seeds
    python benchmarks/bench_strong_npre.py --seeds 1           # the first seed only
    python benchmarks/bench_strong_npre.py --seeds 2 --resume  # add the second seed
    python benchmarks/bench_strong_npre.py --quick             # 1 seed, small sizes
"""

from __future__ import annotations

import _common as common
import numpy as np

from skclusterfit import ClusterFitTransformer

FROZEN = "MobileNetV2 (ImageNet, frozen)"
UPSCALED = 56


def representations(X, seed, settings, targets, record: dict):
    """Row -> features function: the frozen network and ClusterFit's levers from it."""
    n, _, n_pre, n_cf, n_clusters = settings
    quick = n_pre == 1
    base = dict(random_state=seed, max_epochs=n_cf, n_clusters=n_clusters)
    weights = common.mobilenet_weights()
    seconds = {}

    def fit(name, images=X, **params):
        params = {**base, "extractor": "mobilenet_v2", "extractor_weights": weights, **params}
        model, seconds[name] = common.timed(ClusterFitTransformer(**params).fit, images)
        return model

    defaults = fit("defaults")
    frozen = common.feature_layer(defaults, "extractor")
    n_cf_features = common.feature_layer(defaults, "features")
    reps = {FROZEN: frozen, "ClusterFit, defaults": n_cf_features}
    changes = {
        f"K={round(n / 80)} (one cluster per 80 images)": dict(n_clusters=round(n / 80)),
        f"K={round(2.5 * n_clusters)}": dict(n_clusters=round(2.5 * n_clusters)),
        f"N_cf {3 * n_cf} epochs": dict(max_epochs=3 * n_cf),
    }
    for name, change in changes.items():
        reps[f"ClusterFit, {name}"] = common.feature_layer(fit(name, **change), "features")
    side = 32 if quick else UPSCALED
    upscaled = fit(f"N_cf at {side} px", common.resize(X, side))

    def at_side(A):
        return common.feature_layer(upscaled, "features")(common.resize(A, side))

    reps[f"ClusterFit, N_cf on images upscaled to {side} px"] = at_side
    reps["frozen and N_cf side by side"] = lambda A: np.hstack([frozen(A), n_cf_features(A)])
    untrained = fit("untrained N_pre", extractor="random", extractor_weights=None)
    reps["ClusterFit from an untrained network"] = common.feature_layer(untrained, "features")
    record.setdefault("fit_seconds_by_row", []).append({k: round(v, 1) for k, v in seconds.items()})
    return reps


def main():
    common.run_resumable_study(
        "strong_npre", __doc__, representations, markdown, per_seed=("fit_seconds_by_row",)
    )


def markdown(record, title="ClusterFit from a strong N_pre: its levers"):
    runs = record["fit_seconds_by_row"]
    seconds = {row: np.mean([run[row] for run in runs]) for row in runs[0]}
    lines = common.markdown_header(title, record) + [
        f"D_cf: {record['n_images']} Fashion-MNIST training images of classes 0-4; seeds "
        f"{record['seeds']}; N_pre: torchvision's ImageNet MobileNetV2, frozen; K="
        f"{record['n_clusters']} and N_cf {record['epochs'][1]} epochs unless a row says "
        "otherwise; every row read with three stages. Fit seconds per row, mean over seeds: "
        + "; ".join(f"{row} {value:.0f} s" for row, value in seconds.items())
        + ". Mean accuracy (min-max over seeds).",
        "",
    ]
    return "\n".join(lines + common.score_tables(record["scores"]))


if __name__ == "__main__":
    main()
