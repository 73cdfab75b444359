"""Colour images of 32x32: the compact CNN against ``resnet18_small``, speed and quality.

No colour image set ships with these machines, so the colour images are made
from real ones: every Fashion-MNIST, MNIST and digits image is padded (or, for
the 8x8 digits, upsampled) to 32x32 and painted with a light foreground colour
(each channel in [0.55, 1]) and a dark background colour (each in [0, 0.35]),
drawn at random for that image: pixel = background * (1 - g) + foreground * g
for its grey level g in [0, 1]. Colour then carries nothing about the class: a
representation has to see the shapes through it.

Per seed, ClusterFit (RotNet N_pre) is fitted on the first 3,000 colour
Fashion-MNIST training images with each ``architecture`` (used for both
N_pre and N_cf): ``"cnn"``, the compact CNN, and ``"resnet18_small"``, which
``architecture="auto"`` picked for images of 32 pixels or more. Epochs are cut
to 3 (RotNet) and 6 (N_cf) so that ResNet-18 fits in minutes on two CPU
cores; both get the same. Rows: each RotNet's features and ClusterFit's.
Targets: colour Fashion-MNIST (probes trained on images 50,000-54,999, tested
on the test set), colour MNIST, colour digits; linear, 10-shot and 20-NN probes.
Each fit's time is recorded.

``--default-fit`` instead times one fit with the package's defaults on 10,000
colour Fashion-MNIST images (target: under 15 minutes on two CPU cores), and
records which network ``"auto"`` chose and the linear probe of its features.

Usage::

    python benchmarks/bench_colour.py                 # 3 seeds, about 30 minutes
    python benchmarks/bench_colour.py --default-fit   # one default fit, 10k images
    python benchmarks/bench_colour.py --quick         # 1 seed, 500 images, 1 epoch
"""

from __future__ import annotations

import _common as common
import numpy as np
import torch
import torch.nn.functional as F

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_digits, load_fashion_mnist, load_mnist_subset
from skclusterfit.metrics import linear_probe_score

SIDE = 32
ARCHITECTURES = ("cnn", "resnet18_small")


def colourise(images: np.ndarray, seed: int) -> np.ndarray:
    """Grey uint8 images (n, h, w) as 32x32 RGB uint8 images in random colours."""
    grey = torch.from_numpy(images.astype(np.float32) / images.max())[:, None]
    if grey.shape[-1] < SIDE // 2:  # the 8x8 digits: upsample
        grey = F.interpolate(grey, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
    else:  # 28x28: pad with background
        pad = (SIDE - grey.shape[-1]) // 2
        grey = F.pad(grey, (pad, SIDE - grey.shape[-1] - pad) * 2)
    rng = np.random.RandomState(seed)
    # A dark background and a light foreground, each of its own hue, so that
    # the shapes keep their contrast (as objects in photographs do) while the
    # colours vary at random.
    foreground = torch.from_numpy(0.55 + 0.45 * rng.rand(len(images), 3, 1, 1).astype(np.float32))
    background = torch.from_numpy(0.35 * rng.rand(len(images), 3, 1, 1).astype(np.float32))
    rgb = background * (1 - grey) + foreground * grey
    return (rgb.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def colour_targets(quick: bool) -> dict:
    """Target name -> (probe-train images, labels, test images, labels), all colour 32x32."""
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    mnist, digits = load_mnist_subset(), load_digits()
    order = np.random.RandomState(0).permutation(len(mnist.target))
    mnist_images = mnist.data.reshape(-1, 28, 28)[order]
    targets = {
        "colour Fashion-MNIST": (
            colourise(train.images[50_000:55_000], 1),
            train.target[50_000:55_000],
            colourise(test.images, 2),
            test.target,
        ),
        "colour MNIST": (
            colourise(mnist_images[:2500], 3),
            mnist.target[order[:2500]],
            colourise(mnist_images[2500:], 4),
            mnist.target[order[2500:]],
        ),
        "colour digits": (
            colourise(digits.images[:1000], 5),
            digits.target[:1000],
            colourise(digits.images[1000:], 6),
            digits.target[1000:],
        ),
    }
    return common.shrink(targets, 300) if quick else targets


def representations(X, seed, n_pre, n_cf, n_clusters, seconds):
    """Row -> features function; appends each architecture's fit time to ``seconds``."""
    reps = {}
    for architecture in ARCHITECTURES:
        model, took = common.timed(
            ClusterFitTransformer(
                architecture=architecture,
                random_state=seed,
                n_clusters=n_clusters,
                extractor_epochs=n_pre,
                max_epochs=n_cf,
            ).fit,
            X,
        )
        seconds.setdefault(architecture, []).append(took)
        reps[f"RotNet, {architecture}"] = common.feature_layer(model, "extractor")
        reps[f"ClusterFit, {architecture}"] = common.feature_layer(model, "features")
    return reps


def comparison(quick: bool) -> None:
    n, seeds, n_pre, n_cf, n_clusters = (
        (500, [0], 1, 1, 20) if quick else (3_000, [0, 1, 2], 3, 6, 100)
    )
    X = colourise(load_fashion_mnist("train").images[:n], 0)
    data = colour_targets(quick)
    scores: dict = {}
    seconds: dict = {}
    for seed in seeds:
        reps = representations(X, seed, n_pre, n_cf, n_clusters, seconds)
        common.probe_all(scores, reps, data, seed)
        fields = {
            "n_images": n,
            "seeds": seeds[: len(seconds[ARCHITECTURES[0]])],
            "epochs": [n_pre, n_cf],
            "n_clusters": n_clusters,
            "fit_seconds": seconds,
            "scores": scores,
        }
        common.save("colour", quick, fields, markdown)


def default_fit(quick: bool) -> None:
    n = 500 if quick else 10_000
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    X = colourise(train.images[:n], 0)
    model, seconds = common.timed(ClusterFitTransformer(random_state=0).fit, X)
    stages: dict = {}
    for record in model.history_:
        stages[record["stage"]] = stages.get(record["stage"], 0.0) + record["seconds"]
    probe_n = 300 if quick else 5_000
    probe = linear_probe_score(
        model.transform(colourise(train.images[50_000 : 50_000 + probe_n], 1)),
        train.target[50_000 : 50_000 + probe_n],
        model.transform(colourise(test.images[:probe_n], 2)),
        test.target[:probe_n],
    )
    fields = {
        "n_images": n,
        "architecture": str(model.architecture_),
        "network_parameters": sum(p.numel() for p in model.network_.parameters()),
        "seconds": seconds,
        "stage_seconds": stages,
        "linear_probe": probe,
    }
    common.save("colour_default_fit", quick, fields, default_fit_markdown)


def markdown(record):
    title = "Colour 32x32 images: compact CNN against ResNet-18"
    about = (
        f"D_cf: the first {record['n_images']} colour Fashion-MNIST training images; seeds "
        f"{record['seeds']}; RotNet {record['epochs'][0]} epochs, N_cf "
        f"{record['epochs'][1]} epochs, K={record['n_clusters']}, other settings the "
        "package's defaults. Fit time in seconds and accuracy: mean (min-max over seeds). "
        "Both architectures' fits ran in turn on the same machine, so their times compare "
        "with each other; their absolute values depend on what else ran then."
    )
    times = [[name, common.spread(v)] for name, v in record["fit_seconds"].items()]
    return "\n".join(
        common.markdown_header(title, record)
        + [about, ""]
        + common.markdown_table(["architecture", "fit seconds"], times)
        + [""]
        + common.score_tables(record["scores"])
    )


def default_fit_markdown(record):
    lines = common.markdown_header("A default fit on 10,000 colour 32x32 images", record)
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in record["stage_seconds"].items())
    met = "met" if record["seconds"] < 15 * 60 else "missed"
    return "\n".join(
        lines
        + [
            f"{record['n_images']} colour Fashion-MNIST images, package defaults; "
            f"architecture='auto' chose a network of {record['network_parameters']:,} "
            f"parameters ({record['architecture']}).",
            "",
            f"Fit: {record['seconds']:.0f} s ({stages}); target under 15 minutes: {met}.  ",
            f"Linear probe on colour Fashion-MNIST test images: {record['linear_probe']:.3f}.",
            "",
        ]
    )


def main():
    args = common.arguments(__doc__, default_fit="time one default fit, 10k images").parse_args()
    (default_fit if args.default_fit else comparison)(args.quick)


if __name__ == "__main__":
    main()
