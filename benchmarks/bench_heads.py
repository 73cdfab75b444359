"""Several clusterings at once: does N_cf gain from one head per clustering?

ClusterFit trains N_cf on one clustering of N_pre's embeddings. SeLa and SwAV
train on several partitions at once; with a list ``n_clusters`` the package
clusters the embeddings once per entry and gives N_cf one linear head per
clustering, trained on the sum of the heads' losses (beyond the paper). This
study fits ClusterFit from the same RotNet settings with ``n_clusters`` = 100,
500, [100, 500] and [100, 300, 500]. Rows: each N_cf's features, and RotNet's
own features once, from the first fit (every fit of a seed trains the same
RotNet, from the same ``random_state``).

D_cf is the first 5,000 Fashion-MNIST training images of classes 0-4 (the
held-out-class protocol); targets are Fashion classes 0-4 (seen), 5-9 (held
out), MNIST and digits 28x28, with a linear, a 10-shot and a cosine 20-NN probe.
The N_cf training time of each variant is recorded from ``history_``.

Usage::

    python benchmarks/bench_heads.py           # 3 seeds
    python benchmarks/bench_heads.py --quick   # 1 seed, 1,000 images, 300 per probe,
                                               # n_clusters 20, 100, [20, 100], [20, 60, 100]
"""

from __future__ import annotations

import _common as common


def variants(k: int) -> dict:
    """Row label -> ``n_clusters``: K, 5K, [K, 5K] and [K, 3K, 5K] for the study's K."""
    return {
        f"n_clusters={k}": k,
        f"n_clusters={5 * k}": 5 * k,
        f"n_clusters=[{k}, {5 * k}]": [k, 5 * k],
        f"n_clusters=[{k}, {3 * k}, {5 * k}]": [k, 3 * k, 5 * k],
    }


CLUSTERFIT_SECONDS: dict = {}  # variant -> N_cf training time of each seed


def representations(X, seed, settings, targets):
    """Row -> features function; records each variant's N_cf training time."""
    _, _, n_pre, n_cf, k = settings
    reps = {}
    for name, n_clusters in variants(k).items():
        model = common.fit_timed(
            X,
            CLUSTERFIT_SECONDS,
            name,
            "clusterfit",
            random_state=seed,
            n_clusters=n_clusters,
            max_epochs=n_cf,
            extractor_epochs=n_pre,
        )
        if not reps:
            reps["RotNet"] = common.feature_layer(model, "extractor")
        reps[f"ClusterFit(RotNet), {name}"] = common.feature_layer(model, "features")
    return reps


def main():
    quick = common.arguments(__doc__).parse_args().quick
    common.run_held_out_study(
        "heads",
        quick,
        representations,
        markdown,
        lambda: {"clusterfit_seconds": CLUSTERFIT_SECONDS},
    )


def markdown(record):
    n_pre, n_cf = record["epochs"]
    about = (
        f"D_cf: {record['n_images']} Fashion-MNIST training images of classes 0-4; seeds "
        f"{record['seeds']}; RotNet N_pre {n_pre} epochs, N_cf {n_cf} epochs; n_clusters "
        "as each row says (a list trains one head of N_cf per clustering), package "
        "defaults otherwise. Mean accuracy (min-max over seeds)."
    )
    return common.timed_study_markdown(
        "Several clusterings at once", record, about, "N_cf", "clusterfit_seconds"
    )


if __name__ == "__main__":
    main()
