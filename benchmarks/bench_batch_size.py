"""Images per training step: 128, 256 and 512, the learning rate scaled with them.

``batch_size="auto"`` trains with 128 images a step on the CPU and with more
on a CUDA GPU, where a step of 128 small images leaves the device waiting on
the host; the learning rate then grows in proportion to the batch (the linear
scaling rule of Goyal et al., 2017). This study measures what the larger
batches cost in quality. It runs on any device: a fit's result depends on its
batch size and learning rate, not on where it runs (up to the last bits).

Every fit is the package's default fit (RotNet N_pre 10 epochs, K=100, N_cf 20
epochs) with ``batch_size=B`` and ``learning_rate=0.05 * B / 128``, for N_pre
and N_cf alike, on two sets of images and three seeds:

- the held-out-class protocol: D_cf the first 5,000 Fashion-MNIST training
  images of classes 0-4, probed on Fashion classes 0-4 and 5-9, MNIST and the
  digits at 28x28 (linear, 10-shot and 20-NN); rows: N_cf and its N_pre
  (RotNet, read the same way, three stages) at each batch size;
- small data: 1,200 of scikit-learn's digits for fitting and the 597 others
  for probing, drawn per seed as ``bench_digits.py`` does (1,200 images are
  fewer than three steps of 512 an epoch).

``--fashion-10k`` fits instead on the first 10,000 Fashion-MNIST training
images, as ``benchmarks/gpu_check.py`` does on a GPU, and probes N_cf
linearly as it does there (trained on training images 50,000-54,999, tested
on the test set): the same protocol on both devices.

Usage::

    python benchmarks/bench_batch_size.py                # 3 seeds, about 40 minutes on 2 cores
    python benchmarks/bench_batch_size.py --fashion-10k  # 3 seeds, about 20 minutes
    python benchmarks/bench_batch_size.py --quick        # 1 seed, small sizes
"""

from __future__ import annotations

import _common as common
import numpy as np
from sklearn.datasets import load_digits

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_fashion_mnist
from skclusterfit.metrics import linear_probe_score

BATCHES = (128, 256, 512)
BASE_BATCH, BASE_RATE = 128, 0.05
DIGITS = "held-out digits"


def scaled(batch: int) -> dict:
    """The parameters of a fit at ``batch`` images a step, its rate scaled linearly."""
    return {"batch_size": batch, "learning_rate": BASE_RATE * batch / BASE_BATCH}


def fits(X, seed: int, settings: tuple, seconds: dict) -> dict:
    """Row -> features: N_cf and its N_pre at every batch size, fitted on ``X``."""
    _, _, n_pre, n_cf, n_clusters = settings
    reps = {}
    for batch in BATCHES:
        params = dict(random_state=seed, extractor_epochs=n_pre, max_epochs=n_cf, **scaled(batch))
        model, spent = common.timed(ClusterFitTransformer(n_clusters, **params).fit, X)
        seconds.setdefault(f"batch {batch}", []).append(round(spent, 1))
        reps[f"ClusterFit, batch {batch}"] = common.feature_layer(model, "features")
        reps[f"RotNet, batch {batch}"] = common.feature_layer(model, "extractor")
    return reps


def digits_scores(seeds: list, settings: tuple, n_fit: int) -> dict:
    """Row -> probe -> one score per seed on the held-out digits."""
    X, y = load_digits(return_X_y=True)
    scores: dict = {}
    for seed in seeds:
        order = np.random.RandomState(seed).permutation(len(X))
        train, test = order[:n_fit], order[n_fit:]
        reps = fits(X[train], seed, settings, {})
        common.probe_all(scores, reps, {DIGITS: (X[train], y[train], X[test], y[test])}, seed)
    return scores[DIGITS]


def fashion_10k(quick: bool) -> None:
    """N_cf's Fashion test probe after fits on 10,000 images at every batch size."""
    n, seeds, probe_n = (600, [0], 300) if quick else (10_000, [0, 1, 2], 5_000)
    epochs = {"extractor_epochs": 1, "max_epochs": 1} if quick else {}
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    A_train, y_train = (
        train.data[50_000 : 50_000 + probe_n],
        train.target[50_000 : 50_000 + probe_n],
    )
    A_test, y_test = test.data[: 2 * probe_n], test.target[: 2 * probe_n]
    rows: dict = {}
    for seed in seeds:
        for batch in BATCHES:
            params = dict(random_state=seed, **epochs, **scaled(batch))
            model, seconds = common.timed(ClusterFitTransformer(**params).fit, train.data[:n])
            score = linear_probe_score(
                model.transform(A_train), y_train, model.transform(A_test), y_test
            )
            cell = rows.setdefault(f"batch {batch}", {"fit_seconds": [], "test": []})
            cell["fit_seconds"].append(round(seconds, 1))
            cell["test"].append(round(score, 4))
            print(seed, batch, round(seconds, 1), score, flush=True)
    record = {"n_images": n, "probe_images": probe_n, "seeds": seeds, "rows": rows}
    common.save("batch_size_10k", quick, record, fashion_10k_markdown)


def fashion_10k_markdown(record):
    lines = common.markdown_header(
        "Images per training step on 10,000 Fashion-MNIST images", record
    ) + [
        f"`fit` on the first {record['n_images']:,} Fashion-MNIST training images with every "
        f"default but `batch_size=B` and `learning_rate=0.05 * B / 128`, seeds "
        f"{record['seeds']}. N_cf's features probed linearly: trained on "
        f"{record['probe_images']:,} training images from 50,000, tested on the test set "
        "(as `benchmarks/gpu_check.py` probes on a GPU). Fit seconds: wall time on 2 cores "
        "(a record of this run). Mean (min-max over seeds).",
        "",
    ]
    rows = [
        [name, common.spread(cell["fit_seconds"], 0), common.spread(cell["test"])]
        for name, cell in record["rows"].items()
    ]
    table = common.markdown_table(["images a step", "fit s", "Fashion test"], rows)
    return "\n".join(lines + table + [""])


def main():
    args = common.arguments(__doc__, fashion_10k="fits on 10,000 Fashion-MNIST images").parse_args()
    quick = args.quick
    if args.fashion_10k:
        fashion_10k(quick)
        return
    settings = common.study_settings(quick)
    # The small-data part first: a few minutes, recorded with every seed of the other.
    n_digits = 300 if quick else 1200
    digits = digits_scores(settings[1], settings, n_digits)
    record: dict = {"digits_fit_images": n_digits, "digits_scores": digits}
    record["fit_seconds_by_batch"] = {}
    common.run_held_out_study(
        "batch_size",
        quick,
        lambda X, seed, settings, targets: fits(X, seed, settings, record["fit_seconds_by_batch"]),
        markdown,
        more=lambda: record,
    )


def markdown(record):
    seconds = "; ".join(
        f"{row} {np.mean(values):.0f} s" for row, values in record["fit_seconds_by_batch"].items()
    )
    lines = common.markdown_header("Images per training step, the learning rate scaled", record)
    lines += [
        f"{common.held_out_description(record)} Every fit at batch B trains N_pre and N_cf "
        f"with `batch_size=B` and `learning_rate=0.05 * B / 128`. Fit seconds on the "
        f"{record['n_images']:,} images, mean over seeds (a record of this run): {seconds}. "
        "Mean accuracy (min-max over seeds).",
        "",
    ]
    lines += common.score_tables(record["scores"])
    lines += [
        f"Small data: each seed fits on {record['digits_fit_images']:,} of scikit-learn's "
        f"digits (K={record['n_clusters']}) and probes on the others.",
        "",
    ]
    return "\n".join(lines + common.score_tables({DIGITS: record["digits_scores"]}))


if __name__ == "__main__":
    main()
