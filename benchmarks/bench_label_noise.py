"""The paper's label-noise study in small: ClusterFit from a supervised N_pre
trained on noisy labels until it memorises them.

D_cf is the first 5,000 Fashion-MNIST training images of classes 0-4 (the
held-out-class protocol: no network sees classes 5-9). For each noise level p
in 0, 25, 50 and 75%, each label is replaced, with probability p, by a class
drawn uniformly from the five. Then, per seed:

- N_pre: the compact CNN trained on the noisy labels for 30 epochs without
  augmentation, long enough to fit them all (its final training accuracy is
  recorded);
- distillation: a new network trained on N_pre's soft outputs (softmax at
  temperature 4) of the D_cf images;
- fresh network on the noisy labels: a new network trained on the same noisy
  labels;
- ClusterFit(N_pre): K=100 clusters of N_pre's features, a new network trained
  on them.

The last three use the same recipe: the package's defaults (20 epochs, strong
augmentation, SGD with warm-up and cosine decay); they differ only in their
targets. Targets: Fashion classes 0-4 (the classes seen, with their true
labels), Fashion classes 5-9 (held-out classes), MNIST and digits 28x28
(transfer); probes: linear, 10-shot linear, cosine 20-NN.

The study as first run trains in float32, clusters N_pre's features
unwhitened and reads every network's pooled last stage
(``precision="float32"``, ``pca_components=None``, ``feature_stages=1``, the
defaults of the time). ``--whitening-and-stages`` reruns the 75% level with
3 seeds, one option at a time and then both: every network read at 1 and at
3 stages, ClusterFit clustered unwhitened and PCA-64 whitened, training with
``precision="auto"`` (results ``label_noise_options.*``; ``--todays-options``,
the flag's former name in the recorded command, still works).

Usage::

    python benchmarks/bench_label_noise.py           # 2 seeds, about an hour
    python benchmarks/bench_label_noise.py --whitening-and-stages   # 3 seeds, about 30 minutes
    python benchmarks/bench_label_noise.py --quick   # 1 seed, 1,000 images, 300 per probe
"""

from __future__ import annotations

import copy

import _common as common
import numpy as np
import torch

from skclusterfit import ClusterFitTransformer
from skclusterfit._testing import (
    ClassProbabilities,
    build_network,
    check_images,
    infer,
    make_config,
    train,
)

NOISE_LEVELS = (0.0, 0.25, 0.5, 0.75)
TEMPERATURE = 4.0
N_CLASSES = 5


def noisy_labels(y, p, seed):
    """Replace each label with probability ``p`` by a uniformly drawn class."""
    rng = np.random.RandomState(seed)
    replaced = rng.rand(len(y)) < p
    noisy = y.copy()
    noisy[replaced] = rng.randint(0, N_CLASSES, replaced.sum())
    return noisy


def distilled(X, teacher, seed, epochs, precision):
    """A new network trained on ``teacher``'s soft outputs, by the package's loop.

    The ClusterFit recipe with soft targets in place of cluster ids: the
    estimator is fitted for its layout and settings, then its N_cf is trained
    again from scratch on the teacher's softened outputs.
    """
    model = ClusterFitTransformer(
        extractor="random",
        n_clusters=N_CLASSES,
        max_epochs=1,
        random_state=seed,
        precision=precision,
    ).fit(X)
    source = check_images(model, X, reset=False)
    cpu = torch.device("cpu")
    config = make_config(model.get_params(), epochs=epochs, device=cpu, image_shape=source.shape)
    logits = infer(teacher, source, batch_size=config.batch_size, device=cpu)
    soft = torch.softmax(torch.from_numpy(logits) / TEMPERATURE, dim=1).numpy()
    stats = source.channel_stats()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        network = build_network(model.architecture_, source.shape, N_CLASSES, *stats)
        train(
            network,
            source,
            ClassProbabilities(soft),
            config=config,
            generator=torch.Generator().manual_seed(seed),
            stage="distillation",
        )
    model.network_ = network
    return model.set_params(feature_layer="features")


def fitted(X, noisy, seed, n_pre_epochs, epochs, whitening, precision):
    """Name -> fitted model, and N_pre's final training accuracy.

    ``whitening`` lists the ``pca_components`` of the ClusterFit fits, one fit
    each (a row per value when there are several); every network trains with
    ``precision``.
    """
    base = dict(random_state=seed, max_epochs=epochs, precision=precision)
    n_pre = ClusterFitTransformer(
        **{**base, "max_epochs": 1},
        extractor="supervised",
        extractor_epochs=n_pre_epochs,
        augmentation="none",
        n_clusters=2,
    ).fit(X, noisy)
    memorised = n_pre.history_[n_pre_epochs - 1]["accuracy"]
    fresh = ClusterFitTransformer(
        **{**base, "max_epochs": 1}, extractor="supervised", extractor_epochs=epochs, n_clusters=2
    ).fit(X, noisy)
    models = {
        "N_pre": n_pre.set_params(feature_layer="extractor"),
        "distillation of N_pre": distilled(X, n_pre.extractor_.network, seed, epochs, precision),
        "fresh network on the noisy labels": fresh.set_params(feature_layer="extractor"),
    }
    for pca in whitening:
        name = "ClusterFit(N_pre)"
        if len(whitening) > 1:
            name += ", PCA-64 whitened" if pca else ", unwhitened"
        models[name] = ClusterFitTransformer(
            **base, extractor=n_pre.extractor_, n_clusters=100, pca_components=pca
        ).fit(X)
    return models, memorised


def read_at(models, stages):
    """Name -> features function of each model, read at each number of stages."""
    reps = {}
    for name, model in models.items():
        for n in stages:
            label = name if len(stages) == 1 else f"{name}, {n} stage{'s' if n > 1 else ''}"
            reps[label] = copy.copy(model).set_params(feature_stages=n).transform
    return reps


def main():
    parser = common.arguments(__doc__)
    parser.add_argument(
        "--whitening-and-stages",
        "--todays-options",  # its former name, in the command of the committed results
        action="store_true",
        help="75%% noise, 3 seeds: 1 or 3 feature stages, ClusterFit unwhitened or PCA-64 "
        "whitened, precision='auto'",
    )
    args = parser.parse_args()
    quick = args.quick
    if quick:
        n, seeds, n_pre_epochs, epochs, levels = 1_000, [0], 2, 2, (0.0, 0.75)
    else:
        n, seeds, n_pre_epochs, epochs, levels = 5_000, [0, 1], 30, 20, NOISE_LEVELS
    # The first run's options are those of its time: float32, unwhitened, last stage.
    stem, whitening, stages, precision = "label_noise", (None,), (1,), "float32"
    if args.whitening_and_stages:
        stem, whitening, stages, levels = "label_noise_options", (None, 64), (1, 3), (0.75,)
        precision = "auto"
        seeds = seeds[:1] if quick else [0, 1, 2]
    X, y, data = common.held_out_protocol(n, quick)
    scores: dict = {}
    memorised: dict = {}
    seconds = []
    # Seed by seed, the 75% level first, and the results written after every
    # step: an interrupted run still leaves whole seeds of the levels it did.
    for seed in seeds:
        for p in sorted(levels, reverse=True):
            level = f"{p:.0%} noise"
            noisy = noisy_labels(y, p, seed)
            (models, accuracy), fit_seconds = common.timed(
                fitted, X, noisy, seed, n_pre_epochs, epochs, whitening, precision
            )
            memorised.setdefault(level, []).append(round(accuracy, 4))
            seconds.append(fit_seconds)
            common.probe_all(scores, read_at(models, stages), data, seed, prefix=f"{level}: ")
            fields = {
                "n_images": n,
                "seeds": seeds,
                "noise_levels": list(levels),
                "epochs": {"N_pre": n_pre_epochs, "others": epochs},
                "n_clusters": 100,
                "pca_components": list(whitening),
                "precision": precision,
                "feature_stages": list(stages),
                "temperature": TEMPERATURE,
                "n_pre_train_accuracy": memorised,
                "fit_seconds": seconds,
                "scores": _in_order(scores, levels),
            }
            record = common.save(stem, quick, fields, markdown)
            if not args.whitening_and_stages:
                plot(record, quick)


def _in_order(scores, levels):
    """Rows sorted by noise level, whatever order they were computed in."""
    rank = {f"{p:.0%} noise": i for i, p in enumerate(levels)}
    return {
        target: dict(sorted(rows.items(), key=lambda row: rank[row[0].split(": ")[0]]))
        for target, rows in scores.items()
    }


def markdown(record):
    accuracy = ", ".join(
        f"{level}: {np.mean(values):.3f} ({len(values)} seed{'s' if len(values) > 1 else ''})"
        for level, values in record["n_pre_train_accuracy"].items()
    )
    lines = common.markdown_header("Label noise: ClusterFit from a memorising N_pre", record) + [
        f"D_cf: {record['n_images']} Fashion-MNIST training images of classes 0-4; seeds "
        f"{record['seeds']}, run seed by seed (the levels below say how many were run); "
        f"N_pre {record['epochs']['N_pre']} epochs without augmentation, "
        f"the others {record['epochs']['others']} epochs with strong augmentation; "
        f"K={record['n_clusters']}; distillation temperature {record['temperature']:g}; "
        f"ClusterFit's pca_components {_listed(record.get('pca_components', [None]))}; "
        f"features read at {_listed(record.get('feature_stages', [1]))} stage(s). "
        f"N_pre's final accuracy on its noisy training labels: {accuracy}. "
        f"Fitting the networks took {np.mean(record['fit_seconds']):.0f} s per seed "
        "and noise level. "
        "Mean accuracy (min-max over the seeds run).",
        "",
    ]
    return "\n".join(lines + common.score_tables(record["scores"], "noise: representation"))


def _listed(values):
    return " and ".join("none" if v is None else str(v) for v in values)


def plot(record, quick):
    """Linear probe accuracy against noise, one panel per target (PNG next to the JSON)."""
    targets = list(record["scores"])
    done = [p for p in record["noise_levels"] if f"{p:.0%} noise" in record["n_pre_train_accuracy"]]
    levels = [f"{p:.0%} noise" for p in done]
    names = sorted({row.split(": ", 1)[1] for row in record["scores"][targets[0]]})
    fig, axes = common.pyplot().subplots(
        1, len(targets), figsize=(4 * len(targets), 3.4), sharex=True
    )
    for ax, target in zip(axes, targets, strict=True):
        for name in names:
            means = [np.mean(record["scores"][target][f"{lv}: {name}"]["linear"]) for lv in levels]
            ax.plot([100 * p for p in done], means, marker="o", label=name)
        ax.set_title(target, fontsize=10)
        ax.set_xlabel("labels replaced at random (%)")
    axes[0].set_ylabel("linear probe accuracy")
    axes[0].legend(fontsize=7)
    common.save_figure(fig, "label_noise", quick)


if __name__ == "__main__":
    main()
