"""Does bfloat16 cost quality? ``precision="float32"`` against ``"bfloat16"``, and where it hurts.

D_cf is the first 5,000 Fashion-MNIST training images of classes 0-4 (the
held-out-class protocol); targets are Fashion classes 0-4 (seen), 5-9 (held
out), MNIST and digits 28x28, with a linear, a 10-shot and a cosine 20-NN probe.

Every seed fits ClusterFit(RotNet) with the package's defaults twice, with
``precision="float32"`` and ``precision="bfloat16"`` (bfloat16 autocast around
the networks' forward pass while they train, which ``"auto"`` picks on CPUs
with AMX or AVX512-BF16 and on recent GPUs), and records both fits' times.

Seed 0 also runs the diagnosis: the whole ``fit`` and ``transform`` inside
``torch.autocast("cpu", torch.bfloat16)`` (bfloat16 wherever autocast reaches),
then the same with one part taken back to float32 at a time: the augmentation,
N_pre's embeddings before k-means, batch normalisation, ``transform``'s
features. The part whose return to float32 recovers the loss is the one that
hurt.

Usage::

    python benchmarks/bench_precision.py           # 3 seeds, about 60 minutes
    python benchmarks/bench_precision.py --quick   # 1 seed, 1,000 images, 300 per probe
"""

from __future__ import annotations

import contextlib

import _common as common
import torch

import skclusterfit._training
import skclusterfit._transformer
from skclusterfit import ClusterFitTransformer
from skclusterfit._devices import native_bfloat16

FLOAT32 = "precision='float32'"
BFLOAT16 = "precision='bfloat16' (training forward pass)"
EVERYWHERE = "autocast around all of fit and transform"
EXCEPT = {
    "augmentation": "augmentation",
    "embeddings": "N_pre's embeddings before k-means",
    "batch_norm": "batch normalisation",
    "transform": "transform's features",
}


def _float32(function):
    """``function`` run with autocast switched off."""

    def wrapped(*args, **kwargs):
        with torch.autocast("cpu", enabled=False):
            return function(*args, **kwargs)

    return wrapped


@contextlib.contextmanager
def float32_part(part: str | None):
    """Take one part of the package back to float32 under an enclosing autocast."""
    targets = {
        "augmentation": (skclusterfit._training, "augment"),
        "embeddings": (skclusterfit._transformer, "infer"),
        "batch_norm": (torch.nn.BatchNorm2d, "forward"),
    }
    if part not in targets:
        yield
        return
    owner, name = targets[part]
    original = getattr(owner, name)
    if part == "batch_norm":

        def forward(self, x):
            with torch.autocast("cpu", enabled=False):
                return original(self, x.float())

        setattr(owner, name, forward)
    else:
        setattr(owner, name, _float32(original))
    try:
        yield
    finally:
        setattr(owner, name, original)


def diagnosis_row(X, base, part):
    """Features function of a fit run under autocast with ``part`` in float32."""
    with float32_part(part), torch.autocast("cpu", torch.bfloat16):
        model = ClusterFitTransformer(**base, precision="float32").fit(X)

    def features(A):
        if part == "transform":
            return model.transform(A)
        with torch.autocast("cpu", torch.bfloat16):
            return model.transform(A)

    return features


FIT_SECONDS: dict = {FLOAT32: [], BFLOAT16: []}  # each precision's fit time per seed
DIAGNOSIS: dict = {}  # target -> row -> probe -> scores, first seed only


def representations(X, seed, settings, targets):
    """Both precisions' features; on the first seed, the diagnosis rows are probed too."""
    _, seeds, n_pre, n_cf, n_clusters = settings
    base = dict(random_state=seed, extractor_epochs=n_pre, max_epochs=n_cf, n_clusters=n_clusters)
    reps = {}
    for name, precision in ((FLOAT32, "float32"), (BFLOAT16, "bfloat16")):
        model, seconds = common.timed(ClusterFitTransformer(**base, precision=precision).fit, X)
        FIT_SECONDS[name].append(seconds)
        reps[name] = model.transform
    if seed == seeds[0]:
        rows = {EVERYWHERE: diagnosis_row(X, base, None)}
        for part, label in EXCEPT.items():
            rows[f"{EVERYWHERE}, {label} in float32"] = diagnosis_row(X, base, part)
        common.probe_all(DIAGNOSIS, rows, targets, seed)
    return reps


def main():
    quick = common.arguments(__doc__).parse_args().quick

    def more():
        return {
            "bfloat16_native": native_bfloat16(torch.device("cpu")),
            "precision_fit_seconds": FIT_SECONDS,
            "diagnosis": DIAGNOSIS,
        }

    common.run_held_out_study("precision", quick, representations, markdown, more)


def markdown(record):
    lines = common.markdown_header("Precision: float32 against bfloat16", record) + [
        f"{common.held_out_description(record)} This CPU computes bfloat16 natively: "
        f"{record['bfloat16_native']}. Mean accuracy (min-max over seeds). Speed is "
        "measured by perf_training.py and perf_scaling.py, on a quiet machine; the fit "
        "times in the JSON file are a record of this run only.",
        "",
    ]
    diagnosis = f"# Diagnosis (seed {record['seeds'][0]}): which part of a fit under autocast hurts"
    return "\n".join(
        lines
        + common.score_tables(record["scores"])
        + [diagnosis, ""]
        + common.score_tables(record["diagnosis"])
    )


if __name__ == "__main__":
    main()
