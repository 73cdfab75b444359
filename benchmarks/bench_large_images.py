"""Large images on the CPU: a default fit on 96x96 images against one on the same images at 32 px.

The compact CNN's cost grows with the square of the image side; for images of
64 pixels or more ``architecture="auto"`` on the CPU builds ``"cnn_stem"``,
the compact CNN behind a strided stem that brings the images down to about
``STEM_SIDE`` pixels a side. This study fits every default on the first
10,000 Fashion-MNIST training images upscaled (bilinear) to 96x96; the same
with the stem bringing them to 32 px instead of the default side (the
alternative the default was chosen against); and, as the control, every
default on the same images downscaled to 32x32; three seeds each. Each fit is
probed linearly: trained on training images 50,000-54,999, validated on
training images 55,000-59,999 (what a choice between stem sides rests on) and
tested on the 10,000 test images, each resized the same way as the arm's D_cf.
Target: the 96-pixel default fit in at most 3 minutes on 2 cores, with probes
no worse than the 32-pixel fit's.

Usage::

    python benchmarks/bench_large_images.py          # 3 seeds, about 35 minutes
    python benchmarks/bench_large_images.py --quick  # 1 seed, small sizes
"""

from __future__ import annotations

import _common as common

from skclusterfit import ClusterFitTransformer
from skclusterfit._testing import STEM_SIDE, stem_side
from skclusterfit.datasets import load_fashion_mnist
from skclusterfit.metrics import linear_probe_score

# (arm, image side, side the stem brings the images to; None: the default).
ARMS = (("96 px", 96, None), ("96 px, stem to 32 px", 96, 32), ("32 px", 32, None))


def main():
    args = common.arguments(__doc__).parse_args()
    n, seeds, probe_n = (1_000, [0], 300) if args.quick else (10_000, [0, 1, 2], 5_000)
    epochs = {"extractor_epochs": 1, "max_epochs": 1} if args.quick else {}
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    # 96 px first, then down to 32: the control sees what the large fit saw, made small.
    big = {
        "X": common.resize(train.data[:n], 96),
        "A_train": common.resize(train.data[50_000 : 50_000 + probe_n], 96),
        "A_val": common.resize(train.data[55_000 : 55_000 + probe_n], 96),
        "A_test": common.resize(test.data[: 2 * probe_n], 96),
    }
    data = {96: big, 32: {name: common.resize(images, 32) for name, images in big.items()}}
    y_train = train.target[50_000 : 50_000 + probe_n]
    y_val = train.target[55_000 : 55_000 + probe_n]
    y_test = test.target[: 2 * probe_n]
    record: dict = {"n_images": n, "stem_side": STEM_SIDE, "seeds": [], "arms": {}}
    for seed in seeds:
        record["seeds"].append(seed)
        for name, side, arm_stem in ARMS:
            arm = data[side]
            with stem_side(arm_stem):
                model, seconds = common.timed(
                    ClusterFitTransformer(random_state=seed, **epochs).fit, arm["X"]
                )
            stages = {h["stage"] for h in model.history_}
            by_stage = {
                stage: round(sum(h["seconds"] for h in model.history_ if h["stage"] == stage), 1)
                for stage in sorted(stages)
            }
            F_train = model.transform(arm["A_train"])
            val = linear_probe_score(F_train, y_train, model.transform(arm["A_val"]), y_val)
            score = linear_probe_score(F_train, y_train, model.transform(arm["A_test"]), y_test)
            cell = record["arms"].setdefault(name, {"architecture": model.architecture_})
            cell.setdefault("fit_seconds", []).append(round(seconds, 1))
            cell.setdefault("training_seconds", []).append(by_stage)
            cell.setdefault("validation", []).append(round(val, 4))
            cell.setdefault("linear", []).append(round(score, 4))
            print(seed, name, round(seconds, 1), by_stage, val, score, flush=True)
        common.save("large_images", args.quick, record, markdown)


def markdown(record):
    lines = common.markdown_header("Large images on the CPU: 96 px against 32 px", record) + [
        f"`fit` with every default on the first {record['n_images']:,} Fashion-MNIST "
        "training images upscaled to 96x96 (the stem brings them to "
        f"{96 // (96 // record['stem_side'])} px), the same with the stem bringing them "
        "to 32 px, and every default on the same images downscaled to 32x32; seeds "
        f"{record['seeds']}. Linear probe trained on training images 50,000-54,999, "
        "validated on training images 55,000-59,999 and tested on the test set, resized "
        "as the arm's images. Mean (min-max over seeds). Target: the 96-pixel default "
        "fit in at most 180 s, probes no worse than at 32 px.",
        "",
    ]
    rows = [
        [
            arm,
            cell["architecture"],
            common.spread(cell["fit_seconds"], 0),
            common.spread(cell["validation"]),
            common.spread(cell["linear"]),
        ]
        for arm, cell in record["arms"].items()
    ]
    header = ["images", "architecture_", "fit seconds", "validation probe", "test probe"]
    return "\n".join(lines + common.markdown_table(header, rows) + [""])


if __name__ == "__main__":
    main()
