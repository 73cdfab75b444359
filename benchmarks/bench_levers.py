"""Which settings matter: one change at a time from the package's defaults.

D_cf is the first 5,000 Fashion-MNIST training images of classes 0-4 (the
held-out-class protocol); targets are Fashion classes 0-4 (seen), 5-9 (held
out), MNIST and digits 28x28, with a linear, a 10-shot and a cosine 20-NN probe.

Per seed, one RotNet N_pre (10 epochs) is trained and shared, and every row
changes one setting of ClusterFit from it with the same ``random_state`` (so
rows that do not change the clustering get the same clusters): N_cf's
augmentation ("light", "none"), cluster-balanced sampling, PCA whitening to 64
dimensions before k-means, N_cf trained 10 or 40 epochs instead of 20. One
more row clusters a RotNet trained 30 epochs instead of 10 (how long N_pre
trains). Both RotNets' own features are rows too.

Usage::

    python benchmarks/bench_levers.py           # 3 seeds, about 45 minutes
    python benchmarks/bench_levers.py --quick   # 1 seed, 1,000 images, 300 per probe
"""

from __future__ import annotations

import _common as common
import numpy as np

from skclusterfit import ClusterFitTransformer

DEFAULTS = "ClusterFit, defaults"


def representations(X, seed, settings, targets):
    """Row -> features function, every ClusterFit row one change from the defaults."""
    _, _, n_pre, n_cf, n_clusters = settings
    base = dict(random_state=seed, max_epochs=n_cf, n_clusters=n_clusters)
    defaults = ClusterFitTransformer(**base, extractor_epochs=n_pre).fit(X)
    rotnet = defaults.extractor_
    changes = {
        "augmentation='light'": dict(augmentation="light"),
        "augmentation='none'": dict(augmentation="none"),
        "balanced_sampling=True": dict(balanced_sampling=True),
        "pca_components=64 (whitened)": dict(pca_components=64),
        f"N_cf {n_cf // 2} epochs": dict(max_epochs=n_cf // 2),
        f"N_cf {2 * n_cf} epochs": dict(max_epochs=2 * n_cf),
    }
    reps = {
        f"RotNet ({n_pre} epochs)": common.feature_layer(defaults, "extractor"),
        DEFAULTS: common.feature_layer(defaults, "features"),
    }
    for name, change in changes.items():
        fitted = ClusterFitTransformer(**{**base, **change}, extractor=rotnet).fit(X)
        reps[f"ClusterFit, {name}"] = common.feature_layer(fitted, "features")
    longer = ClusterFitTransformer(**base, extractor_epochs=3 * n_pre).fit(X)
    reps[f"RotNet ({3 * n_pre} epochs)"] = common.feature_layer(longer, "extractor")
    reps[f"ClusterFit, N_pre RotNet {3 * n_pre} epochs"] = common.feature_layer(longer, "features")
    return reps


def main():
    quick = common.arguments(__doc__).parse_args().quick
    common.run_held_out_study("levers", quick, representations, markdown)


def markdown(record):
    lines = common.markdown_header("Levers: one setting changed at a time", record) + [
        f"{common.held_out_description(record)} Defaults otherwise, strong augmentation "
        f"among them. Fitting every row took {np.mean(record['fit_seconds']):.0f} s per "
        "seed. Mean accuracy (min-max over seeds).",
        "",
    ]
    return "\n".join(lines + common.score_tables(record["scores"]))


if __name__ == "__main__":
    main()
