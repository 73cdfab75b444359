"""ClusterFit from a strong N_pre: N_cf as a ResNet-18, and N_cf started from N_pre's weights.

Two levers of ClusterFit from torchvision's frozen ImageNet MobileNetV2 that
``bench_strong_npre.py`` leaves out, each against the frozen network read the
same way (three stages) and against ClusterFit from it with every default
(the compact CNN as N_cf):

- N_cf a torchvision ResNet-18, untrained (``architecture="resnet18"``): more
  capacity than the compact CNN, on the images at their 28 px;
- N_cf a MobileNetV2 started from the same ImageNet weights as N_pre and
  trained on the pseudo-labels as N_cf is by default (``architecture`` a
  factory): fine-tuning on the clusters, beyond the paper, whose N_cf is
  trained from scratch.

Held-out-class protocol, as ``bench_strong_npre.py``: D_cf the first 5,000
Fashion-MNIST training images of classes 0-4; targets Fashion 0-4 and 5-9,
MNIST and the digits, each with a linear, a 10-shot and a 20-NN probe.

Usage::

    python benchmarks/bench_strong_npre_networks.py                     # 3 seeds
    python benchmarks/bench_strong_npre_networks.py --seeds 1           # the first seed
    python benchmarks/bench_strong_npre_networks.py --seeds 2 --resume  # add the second
    python benchmarks/bench_strong_npre_networks.py --quick             # 1 seed, small
"""

from __future__ import annotations

import _common as common
import bench_strong_npre as strong_npre
import torch
import torchvision
from torch import nn

from skclusterfit import ClusterFitTransformer


class _Grey(nn.Module):
    """Grey images as the three channels an ImageNet network takes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1)


def pretrained_mobilenet(weights):
    """An ``architecture`` factory: MobileNetV2 with ImageNet weights and a new head."""

    def factory(n_outputs: int) -> nn.Module:
        model = torchvision.models.mobilenet_v2()
        model.load_state_dict(torch.load(weights, weights_only=True))
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, n_outputs)
        return nn.Sequential(_Grey(), model)

    return factory


def representations(X, seed, settings, targets, record: dict):
    """Row -> features function: the frozen network, the default N_cf and the two levers."""
    _, _, _, n_cf, n_clusters = settings
    weights = common.mobilenet_weights()
    base = dict(
        random_state=seed,
        max_epochs=n_cf,
        n_clusters=n_clusters,
        extractor="mobilenet_v2",
        extractor_weights=weights,
    )
    seconds = {}
    rows = {
        "ClusterFit, defaults": {},
        "ClusterFit, N_cf a ResNet-18 (untrained)": {"architecture": "resnet18"},
        "ClusterFit, N_cf a MobileNetV2 from N_pre's weights": {
            "architecture": pretrained_mobilenet(weights)
        },
    }
    reps = {}
    for name, change in rows.items():
        model, seconds[name] = common.timed(ClusterFitTransformer(**base, **change).fit, X)
        if not reps:
            reps[strong_npre.FROZEN] = common.feature_layer(model, "extractor")
        reps[name] = common.feature_layer(model, "features")
    record.setdefault("fit_seconds_by_row", []).append({k: round(v, 1) for k, v in seconds.items()})
    return reps


def main():
    common.run_resumable_study(
        "strong_npre_networks",
        __doc__,
        representations,
        markdown,
        per_seed=("fit_seconds_by_row",),
    )


def markdown(record):
    return strong_npre.markdown(record, "ClusterFit from a strong N_pre: N_cf's network")


if __name__ == "__main__":
    main()
