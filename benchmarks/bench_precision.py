"""Does bfloat16 cost quality? ``precision="float32"`` against ``"bfloat16"``, and where it hurts.

D_cf is the first 5,000 Fashion-MNIST training images of classes 0-4 (the
held-out-class protocol); targets are Fashion classes 0-4 (seen), 5-9 (held
out), MNIST and digits 28x28, with a linear, a 10-shot and a cosine 20-NN probe.

Every seed fits ClusterFit(RotNet) with the package's defaults twice, with
``precision="float32"`` and ``precision="bfloat16"`` (bfloat16 autocast around
the networks' forward pass while they train, which ``"auto"`` picks on CPUs
with AMX or AVX512-BF16 and on recent GPUs), and records both fits' times.

``--diagnosis`` runs instead, on seed 0, the whole ``fit`` and ``transform``
inside ``torch.autocast("cpu", torch.bfloat16)`` (bfloat16 wherever autocast
reaches), then the same with parts taken back to float32: each of N_pre's
embeddings before k-means, batch normalisation and ``transform``'s features
alone, and the pair of the two parts that lie outside the training forward
pass. A part, or a pair, whose return to float32 recovers the loss is what
hurt. Results go to ``precision_diagnosis.*``. (The committed record, of
2026-11-27, also has rows for the augmentation, which autocast lowered then
through ``affine_grid``; the augmentation has since no operation autocast
lowers.)

Usage::

    python benchmarks/bench_precision.py               # 3 seeds, about 40 minutes
    python benchmarks/bench_precision.py --diagnosis   # seed 0, 5 fits, about 25 minutes
    python benchmarks/bench_precision.py --quick       # 1 seed, 1,000 images, 300 per probe
"""

from __future__ import annotations

import contextlib

import _common as common
import torch

from skclusterfit import ClusterFitTransformer, _testing

FLOAT32 = "precision='float32'"
BFLOAT16 = "precision='bfloat16' (training forward pass)"
EVERYWHERE = "autocast around all of fit and transform"
PARTS = {
    "embeddings": "N_pre's embeddings before k-means",
    "batch_norm": "batch normalisation",
    "transform": "transform's features",
}
# What diagnosis rows take back to float32: each part alone, then each pair of
# the parts outside the training forward pass.
TAKEN_BACK = [(part,) for part in PARTS] + [("embeddings", "transform")]
# The parts the package's hook runs in float32: in a fit, every inference pass
# is N_pre's embeddings before k-means.
PACKAGE_PART = {"embeddings": "inference"}


@contextlib.contextmanager
def float32_parts(parts: tuple):
    """Take parts of a fit back to float32 under an enclosing autocast.

    N_pre's embeddings by the package's hook for this study;
    batch normalisation, a torch layer, by running its forward pass in float32.
    """
    package_parts = [PACKAGE_PART[part] for part in parts if part in PACKAGE_PART]
    with _testing.float32_parts(*package_parts), contextlib.ExitStack() as stack:
        if "batch_norm" in parts:
            stack.enter_context(_float32_batch_norm())
        yield  # "transform": see diagnosis_row


@contextlib.contextmanager
def _float32_batch_norm():
    original = torch.nn.BatchNorm2d.forward

    def forward(self, x):
        with torch.autocast("cpu", enabled=False):
            return original(self, x.float())

    torch.nn.BatchNorm2d.forward = forward
    try:
        yield
    finally:
        torch.nn.BatchNorm2d.forward = original


def diagnosis_row(X, base, parts: tuple):
    """Features function of a fit run under autocast with ``parts`` in float32."""
    with float32_parts(parts), torch.autocast("cpu", torch.bfloat16):
        model = ClusterFitTransformer(**base, precision="float32").fit(X)

    def features(A):
        if "transform" in parts:
            return model.transform(A)
        with torch.autocast("cpu", torch.bfloat16):
            return model.transform(A)

    return features


FIT_SECONDS: dict = {FLOAT32: [], BFLOAT16: []}  # each precision's fit time per seed


def _base(seed, settings) -> dict:
    _, _, n_pre, n_cf, n_clusters = settings
    return dict(random_state=seed, extractor_epochs=n_pre, max_epochs=n_cf, n_clusters=n_clusters)


def representations(X, seed, settings, targets):
    """Features of a float32 and a bfloat16 fit."""
    reps = {}
    for name, precision in ((FLOAT32, "float32"), (BFLOAT16, "bfloat16")):
        model = ClusterFitTransformer(**_base(seed, settings), precision=precision)
        fitted, seconds = common.timed(model.fit, X)
        FIT_SECONDS[name].append(seconds)
        reps[name] = fitted.transform
    return reps


def diagnosis(X, seed, settings, targets):
    """Features of fits under autocast, with parts taken back to float32."""
    rows = {EVERYWHERE: diagnosis_row(X, _base(seed, settings), ())}
    for parts in TAKEN_BACK:
        label = " and ".join(PARTS[part] for part in parts)
        rows[f"{EVERYWHERE}, {label} in float32"] = diagnosis_row(X, _base(seed, settings), parts)
    return rows


def main():
    args = common.arguments(__doc__, diagnosis="which part of autocast hurts").parse_args()
    native = {"bfloat16_native": _testing.native_bfloat16(torch.device("cpu"))}
    if args.diagnosis:
        common.run_held_out_study(
            "precision_diagnosis",
            args.quick,
            diagnosis,
            diagnosis_markdown,
            lambda: native,
            seeds=1,
        )
        return
    common.run_held_out_study(
        "precision",
        args.quick,
        representations,
        markdown,
        lambda: {**native, "precision_fit_seconds": FIT_SECONDS},
    )


def markdown(record):
    lines = common.markdown_header("Precision: float32 against bfloat16", record) + [
        f"{common.held_out_description(record)} This CPU computes bfloat16 natively: "
        f"{record['bfloat16_native']}. Mean accuracy (min-max over seeds). Speed is "
        "measured by perf_training.py and perf_scaling.py, on a quiet machine; the fit "
        "times in the JSON file are a record of this run only.",
        "",
    ]
    return "\n".join(lines + common.score_tables(record["scores"]))


def diagnosis_markdown(record):
    title = "Precision: which part of a fit under autocast costs accuracy"
    lines = common.markdown_header(title, record) + [
        f"{common.held_out_description(record)} Every row fits and transforms inside "
        "torch.autocast('cpu', torch.bfloat16), but for the parts it names, which run in "
        "float32. One seed.",
        "",
    ]
    return "\n".join(lines + common.score_tables(record["scores"]))


if __name__ == "__main__":
    main()
