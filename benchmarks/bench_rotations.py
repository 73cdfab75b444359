"""Fewer rotations per RotNet step: how much faster, and is anything lost?

RotNet, the default N_pre, shows every image at its four rotations in every
epoch, so an epoch costs about four N_cf epochs and dominates a default fit.
This study trains RotNet with ``rotations_per_image`` = 4 (every rotation), 2
and 1 (drawn at random per image and epoch) for the same 10 epochs, and with 1
rotation for 40 epochs (as many rotated images as the 4-rotation RotNet), then
ClusterFit from each with the same settings. Rows: each RotNet's own features
and ClusterFit's.

D_cf is the first 5,000 Fashion-MNIST training images of classes 0-4 (the
held-out-class protocol); targets are Fashion classes 0-4 (seen), 5-9 (held
out), MNIST and digits 28x28, with a linear, a 10-shot and a cosine 20-NN probe.
The RotNet training time of each variant is recorded from ``history_``.

Usage::

    python benchmarks/bench_rotations.py           # 3 seeds, about 40 minutes
    python benchmarks/bench_rotations.py --quick   # 1 seed, 1,000 images, 300 per probe
"""

from __future__ import annotations

import _common as common


def variants(n_pre: int) -> dict:
    """Row label -> (rotations per image, RotNet epochs)."""
    return {
        f"4 rotations, {n_pre} epochs": (4, n_pre),
        f"2 rotations, {n_pre} epochs": (2, n_pre),
        f"1 rotation, {n_pre} epochs": (1, n_pre),
        f"1 rotation, {4 * n_pre} epochs": (1, 4 * n_pre),
    }


ROTNET_SECONDS: dict = {}  # variant -> RotNet training time of each seed


def representations(X, seed, settings, targets):
    """Row -> features function; records each variant's RotNet training time."""
    _, _, n_pre, n_cf, n_clusters = settings
    reps = {}
    for name, (per_image, epochs) in variants(n_pre).items():
        model = common.fit_timed(
            X,
            ROTNET_SECONDS,
            name,
            "rotnet",
            random_state=seed,
            n_clusters=n_clusters,
            max_epochs=n_cf,
            extractor_epochs=epochs,
            rotations_per_image=per_image,
        )
        reps[f"RotNet, {name}"] = common.feature_layer(model, "extractor")
        reps[f"ClusterFit(RotNet, {name})"] = common.feature_layer(model, "features")
    return reps


def main():
    quick = common.arguments(__doc__).parse_args().quick
    common.run_held_out_study(
        "rotations", quick, representations, markdown, lambda: {"rotnet_seconds": ROTNET_SECONDS}
    )


def markdown(record):
    about = (
        f"{common.held_out_description(record)} RotNet epochs and rotations as each row "
        "says, package defaults otherwise. Mean accuracy (min-max over seeds)."
    )
    return common.timed_study_markdown(
        "RotNet with fewer rotations per image", record, about, "RotNet", "rotnet_seconds"
    )


if __name__ == "__main__":
    main()
