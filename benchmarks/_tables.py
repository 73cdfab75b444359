"""The committed benchmark results as reStructuredText tables, for the docs and README.

``write_all(folder)`` writes one ``results_*.rst`` file per table, each table
followed by the command, date, machine and versions of the run it comes from,
and copies the results' figures; ``docs/conf.py`` calls it on every build, and
the Benchmarks page includes the files. ``digits_table(record)`` is the table
of ``results/digits.json`` alone, as README.rst shows it (a test checks that
README's copy is the one rendered here).
"""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import numpy as np

from skclusterfit._testing import _choose

RESULTS = Path(__file__).parent / "results"


# The rows and probes of README.rst's short digits table.
README_DIGITS = {
    "rows": ("raw pixels", "RotNet (10 epochs)", "ClusterFit(RotNet)"),
    "probes": ("linear", "10-shot"),
    "title": "digits, 3 seeds",
}
_PROBE_HEADERS = {"linear": "linear probe", "10-shot": "10-shot probe", "20-NN": "20-NN"}


def digits_table(record: dict, rows=None, probes=None, title: str = "representation") -> str:
    """The digits study's table from the record of ``results/digits.json``.

    ``rows`` and ``probes`` choose some of its rows and probe columns (None:
    all), in their order; ``title`` heads the first column.
    """
    scores = record["scores"]
    rows = list(scores) if rows is None else rows
    probes = list(next(iter(scores.values()))) if probes is None else probes
    table = [(title, *(_PROBE_HEADERS[p] for p in probes))]
    table += [(name, *(_spread(scores[name][p]) for p in probes)) for name in rows]
    return _rules(table)


def write_all(out: Path, results: Path = RESULTS) -> None:
    """Write every table of the committed results in ``results`` to ``out``.

    Parameters
    ----------
    out : Path
        The folder of the ``results_*.rst`` files and figures, made if missing.
    results : Path
        The folder of the committed results.
    """
    out.mkdir(parents=True, exist_ok=True)

    def load(stem):
        return json.loads((results / f"{stem}.json").read_text())

    digits = load("digits")
    (out / "results_digits.rst").write_text(digits_table(digits) + _source(digits))

    clustering = load("perf_clustering")
    names = {"kmeans": "kmeans (k-means++)", "kmeans-random": "kmeans (random init)"}
    rows = [("N", "d", "K", "method", "seconds", "inertia / best", "auto")]
    for row in clustering["rows"]:
        key = (row["n"], row["d"], row["k"])
        best = min(r["inertia"] for r in clustering["rows"] if (r["n"], r["d"], r["k"]) == key)
        picked = _choose("auto", row["n"], row["k"], faiss_installed=True)
        picked = names.get(picked, picked)
        rows.append(
            (
                *map(str, key),
                row["method"],
                f"{row['seconds']:.2f}",
                f"{row['inertia'] / best:.4f}",
                "yes" if picked == row["method"] else "",
            )
        )
    (out / "results_clustering.rst").write_text(_table(rows, clustering))

    _loop_tables(out, load)
    _cpu_tables(out, load)
    _frontier_tables(out, load, results)
    _neighbors_tables(out, load)
    _compile_table(out, load)
    _gpu_tables(out, load)

    fits = load("features_default_fit")
    rows = [("network", "1 stage", "2 stages", "3 stages")]
    rows += [
        (name, *(_spread(by_stages[str(k)]) for k in (1, 2, 3)))
        for name, by_stages in fits["scores"].items()
    ]
    (out / "results_features_default_fit.rst").write_text(_table(rows, fits))
    scaling = load("perf_scaling")
    rows = [("N", "fit (s)", "RotNet (s)", "N_cf (s)", "rest (s)", "peak RSS above start (MB)")]
    for r in scaling["rows"]:
        rows.append(
            (
                str(r["n"]),
                f"{r['seconds']:.1f}",
                f"{r['rotnet_seconds']:.1f}",
                f"{r['clusterfit_seconds']:.1f}",
                f"{r['other_seconds']:.1f}",
                f"{r['peak_rss_mb'] - r['rss_before_mb']:.0f}",
            )
        )
    summary = (
        f"Fitted: time grows as N^{scaling['time_exponent']:.2f}; memory above the start "
        f"grows by {scaling['memory_mb_per_10k_images']:.1f} MB per 10k images on top of "
        f"{scaling['memory_fixed_mb']:.0f} MB.\n"
    )
    (out / "results_scaling.rst").write_text(_table(rows, scaling) + "\n" + summary)

    files = load("perf_memory_files")
    rows = [("PNG files", "peak RSS above start (MB)", "clusterer")]
    for r in files["rows"]:
        rows.append((f"{r['n']:,}", f"{r['peak_rss_mb'] - r['rss_before_mb']:.0f}", r["clusterer"]))
    summary = (
        f"Fit: {files['memory_fixed_mb']:.0f} MB fixed plus "
        f"{files['memory_mb_per_10k_images']:.1f} MB per 10k images; the memory-mapped "
        f"features take {files['feature_arrays_mb_per_10k_images']:.1f} MB per 10k images.\n"
    )
    (out / "results_memory_files.rst").write_text(_table(rows, files) + "\n" + summary)

    studies = ("selfsupervised", "selfsupervised_heldout", "label_noise", "label_noise_options")
    studies += ("rounds", "levers")
    studies += ("precision", "precision_diagnosis", "rotations", "colour", "features", "heads")
    studies += ("peers",)
    for stem in studies:
        record = load(stem)
        for target, table in record["scores"].items():
            rows = [("representation", "linear", "10-shot", "20-NN")]
            rows += [(name, *map(_spread, cell.values())) for name, cell in table.items()]
            slug = _slug(target)
            text = _table(rows, record)
            if stem.startswith("label_noise"):
                text += "\nSeeds run and N_pre's final accuracy on its noisy labels: " + "; ".join(
                    f"{level}: {len(v)} seed{'s' * (len(v) > 1)}, {sum(v) / len(v):.3f}"
                    for level, v in record["n_pre_train_accuracy"].items()
                )
                text += ".\n"
            (out / f"results_{stem}_{slug}.rst").write_text(text)

    record = load("rounds")
    rows = [("clusters of", "NMI with the classes", "NMI with the previous round")]
    for name, cell in record["cluster_nmi"].items():
        rows.append((name, *("-" if None in v else _spread(v) for v in cell.values())))
    (out / "results_rounds_nmi.rst").write_text(_table(rows, record))

    for stem in ("n_clusters", "n_clusters_options"):
        record = load(stem)
        grid = [k for k in next(iter(record["scores"].values())) if k != "RotNet"]
        rows = [("score", *(f"K={k}" for k in grid), "RotNet")]
        rows += [(m, *map(_spread, cells.values())) for m, cells in record["scores"].items()]
        (out / f"results_{stem}.rst").write_text(_table(rows, record))
    peers = load("peers")
    rows = [("representation", "training seconds")]
    for row in peers["training_seconds"][0]:
        rows.append((row, _spread([run[row] for run in peers["training_seconds"]], ".0f")))
    (out / "results_peers_seconds.rst").write_text(_table(rows, peers))

    for figure in ("label_noise.png", "n_clusters.png", "rounds.png", "peers.png"):
        shutil.copyfile(results / figure, out / figure)

    default = load("perf_scaling_default")
    rows = [("N", "fit (s)", "RotNet (s)", "N_cf (s)", "rest (s)")]
    keys = ("seconds", "rotnet_seconds", "clusterfit_seconds", "other_seconds")
    rows += [(f"{r['n']:,}", *(f"{r[k]:.0f}" for k in keys)) for r in default["rows"]]
    (out / "results_default_fits.rst").write_text(_table(rows, default))

    colour = load("colour")
    rows = [("architecture", "fit seconds")]
    rows += [(name, _spread(v)) for name, v in colour["fit_seconds"].items()]
    (out / "results_colour_times.rst").write_text(_table(rows, colour))
    fit = load("colour_default_fit")
    rows = [("images", "network", "fit (s)", "stages (s)", "linear probe")]
    stages = ", ".join(f"{k} {v:.0f}" for k, v in fit["stage_seconds"].items())
    network = f"{fit['architecture']}, {fit['network_parameters']:,} parameters"
    rows.append(
        (
            f"{fit['n_images']:,}",
            network,
            f"{fit['seconds']:.0f}",
            stages,
            f"{fit['linear_probe']:.3f}",
        )
    )
    (out / "results_colour_default_fit.rst").write_text(_table(rows, fit))

    predict = load("predict")
    rows = [("method", "cluster accuracy", "NMI")]
    rows += [(m, *map(_spread, cell.values())) for m, cell in predict["scores"].items()]
    (out / "results_predict.rst").write_text(_table(rows, predict))

    profile = load("perf_profile")
    rows = [("operator", "self CPU (s)", "share", "calls")]
    for r in profile["top_operators"]:
        rows.append(
            (
                f"``{r['operator']}``",
                f"{r['self_cpu_seconds']:.2f}",
                f"{r['share']:.1%}",
                str(r["calls"]),
            )
        )
    (out / "results_profile.rst").write_text(_table(rows, profile))


def _slug(target: str) -> str:
    """File-name part for a probe target: "fashion", "fashion_heldout", "colour_mnist"..."""
    words = target.split()
    colour = words[0] == "colour"
    slug = words[int(colour)].lower().replace("-", "")
    if "held-out" in target:
        slug += "_heldout"
    return f"colour_{slug}" if colour else slug


def _loop_tables(out, load):
    """Throughput of every side of perf_training.py, and the ratios it reports."""
    from perf_training import COMPARISONS, recorded_ratios

    loop = load("perf_training")
    rows = [("stage", "side", "images/s: median (min-max over rounds)")]
    for stage in ("training", "inference"):
        for side, v in loop[f"{stage}_images_per_second"].items():
            rows.append((stage, side, f"{statistics.median(v):.0f} ({min(v):.0f}-{max(v):.0f})"))
    (out / "results_loop.rst").write_text(_table(rows, loop))
    rows = [("stage", "ratio", "median", "range over rounds", "target")]
    for stage, comparisons in COMPARISONS.items():
        speeds = loop[f"{stage}_images_per_second"]
        for side, baseline, target, found in recorded_ratios(speeds, comparisons):
            median = statistics.median(found)
            verdict = (
                ""
                if target is None
                else f">= {target}: " + ("met" if median >= target else "missed")
            )
            rows.append(
                (
                    stage,
                    f"{side} / {baseline}",
                    f"{median:.3f}",
                    f"{min(found):.3f}-{max(found):.3f}",
                    verdict,
                )
            )
    (out / "results_loop_ratios.rst").write_text(_table(rows, loop))


def _compile_table(out, load):
    """Eager against compiled training and inference (perf_compile.py)."""
    record = load("perf_compile")
    rows = [("stage", "side", "first epoch (s)", "images/s", "vs eager", "break-even")]
    found = record["training"]
    for side, speeds in found["images_per_second"].items():
        eager = found["images_per_second"].get(f"eager, {side.rsplit(', ', 1)[1]}")
        even = found["break_even_images"].get(side, "")
        rows.append(
            (
                "training",
                side,
                f"{found['first_epoch_seconds'][side]:.1f}",
                f"{statistics.median(speeds):.0f} ({min(speeds):.0f}-{max(speeds):.0f})",
                ""
                if eager is None
                else f"{statistics.median(speeds) / statistics.median(eager):.2f}",
                "" if even == "" else ("never" if even is None else f"{even:,.0f} images"),
            )
        )
    found = record["inference"]
    inference = found.get("images_per_second", {})
    eager = statistics.median(inference["eager"]) if "eager" in inference else None
    for side, speeds in inference.items():
        first = found["first_pass_seconds"].get(side)
        rows.append(
            (
                "inference",
                side,
                "" if first is None else f"{first:.1f}",
                f"{statistics.median(speeds):.0f} ({min(speeds):.0f}-{max(speeds):.0f})",
                "" if eager is None else f"{statistics.median(speeds) / eager:.2f}",
                "",
            )
        )
    (out / "results_compile.rst").write_text(_table(rows, record))


def _spread(values, form: str = ".3f"):
    """Mean (min-max) of the values of one cell; the mean alone for one value."""
    mean = f"{sum(values) / len(values):{form}}"
    return mean if len(values) == 1 else f"{mean} ({min(values):{form}}-{max(values):{form}})"


def _gpu_tables(out, load):
    """The fits and loop ratios that gpu_check.py measured on a GPU."""
    record = load("gpu_check")
    rows = [("images", "network", "precision", "fit (s)", "stages (s)", "linear probe")]
    for name, r in record["sections"].items():
        if not name.startswith(("fit_", "colour_")) or "seconds" not in r:
            continue
        stages = ", ".join(f"{k} {v:.0f}" for k, v in r["stage_seconds"].items())
        rows.append(
            (
                f"{r['n_images']:,}" + (" colour 32x32" if name.startswith("colour_") else ""),
                r.get("architecture", "cnn"),  # runs before the field was recorded: "auto" = cnn
                r["params"].get("precision", "auto"),
                f"{r['seconds']:.0f}",
                stages,
                f"{r['linear_probe']:.3f}" if "linear_probe" in r else "",
            )
        )
    source = dict(record, notes=f"{record.get('notes', '')} Device: {record['device']}.".strip())
    (out / "results_gpu_fits.rst").write_text(_table(rows, source))
    from perf_training import ratios

    loop = record["sections"]["throughput"]
    rows = [("stage", "ratio", "median", "range over rounds")]
    for stage, pairs in loop["ratios"].items():
        speeds = loop[f"{stage}_images_per_second"]
        for pair in pairs:
            found = ratios(speeds, *pair.split(" / "))
            rows.append(
                (
                    stage,
                    pair,
                    f"{statistics.median(found):.3f}",
                    f"{min(found):.3f}-{max(found):.3f}",
                )
            )
    (out / "results_gpu_loop.rst").write_text(_table(rows, source))


def _table(rows, record):
    """An RST table of ``rows`` (the first the header), then the run it comes from."""
    return _rules(rows) + _source(record)


def _rules(rows) -> str:
    """``rows`` as an RST simple table, the first row its header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    rule = "  ".join("=" * w for w in widths)
    lines = [
        rule,
        "  ".join(c.ljust(w) for c, w in zip(rows[0], widths, strict=True)).rstrip(),
        rule,
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows[1:]
    ]
    lines.append(rule)
    return "\n".join(lines) + "\n"


def _source(record) -> str:
    """The line under a table: the command, date, machine and versions of its run."""
    source = (
        f"Command ``{record['command']}``, run on {record['date']}; machine: "
        f"{record['machine']}; CPU: {_cpu(record)}; versions: {record['versions']}."
    )
    if record.get("seed_runs"):
        source = " ".join(
            f"Seeds {run['seeds']}: command ``{run['command']}``, run on {run['date']}; "
            f"machine: {run['machine']}; CPU: {_cpu(run)}; versions: {run['versions']}."
            for run in record["seed_runs"]
        )
    if record.get("notes"):
        source += f" Note: {record['notes']}"
    return "\n" + source + "\n"


def _cpu(run: dict) -> str:
    """The CPU a run names, or that it names none (runs before records named their CPU)."""
    return run.get("cpu", "not named in this record, which predates the CPU field")


def _frontier_tables(out, load, results):
    """bench_frontier.py in the avx2 mode: each row's fit seconds and probes, and figures.

    One table for 10k Fashion-MNIST (a column per probe); for the held-out-class
    protocol, one table per probe (a column per target).
    """
    fashion = load("frontier_avx2")
    (target,) = fashion["scores"]
    scores = fashion["scores"][target]
    probes = list(next(iter(scores.values())))
    rows = [("fit", "fit (s)", *probes)]
    for name, seconds in fashion["fit_seconds"].items():
        cells = (_spread(scores[name][probe]) for probe in probes)
        rows.append((name, _spread(seconds, ".0f"), *cells))
    (out / "results_frontier_avx2.rst").write_text(_table(rows, fashion))
    record = load("frontier_heldout_avx2")
    targets = list(record["scores"])
    tables = []
    for probe in probes:
        rows = [("fit", *targets)]
        for name in record["fit_seconds"]:
            rows.append((name, *(_spread(record["scores"][t][name][probe]) for t in targets)))
        tables.append(f"{probe} probe:\n\n" + _rules(rows))
    (out / "results_frontier_heldout_avx2.rst").write_text("\n".join(tables) + _source(record))
    for stem in ("frontier_avx2", "frontier_heldout_avx2"):
        shutil.copyfile(results / f"{stem}.png", out / f"{stem}.png")
    from bench_frontier import LINEAR_MARGIN, TARGET_SECONDS, answer

    found = answer(fashion, record)
    lines = [
        f"Each faster fit against the targets (a fit of at most {TARGET_SECONDS} s here, the "
        f"10k linear probe within {LINEAR_MARGIN * 100:.1f} points of the defaults', every "
        "held-out-protocol mean at or above the defaults' lowest seed):",
        "",
    ]
    for name, missed in found["rows"].items():
        lines.append(
            f"- {name}: "
            + ("meets every target" if not missed else "misses " + "; ".join(missed))
            + "."
        )
    chosen = found["chosen"] or "none of them"
    lines += ["", f"The fastest that meets them all: **{chosen}**.", ""]
    (out / "results_frontier_answer.rst").write_text("\n".join(lines))


def _neighbors_tables(out, load):
    """bench_neighbors.py: retrieval, near-duplicates and outliers by representation,
    the targets they were held to, and perf_write_features.py."""
    from bench_neighbors import DEFAULTS, EDITS, best_threshold

    record = load("neighbors")
    runs = record["readings"]
    reps = list(runs[0])

    def cell(row, key):
        values = [run[row].get(key) for run in runs]
        return "n/a" if None in values else _spread(values)

    def write(name, columns, key=lambda row, column: column, first=()):
        rows = [("representation", *(c for c, _ in first), *columns)]
        for row in reps:
            extra = (f(row) for _, f in first)
            rows.append((row, *extra, *(cell(row, key(row, c)) for c in columns)))
        (out / f"results_neighbors_{name}.rst").write_text(_table(rows, record))

    targets = [k.split(" ", 1)[1] for k in runs[0][reps[0]] if k.startswith("precision@10 ")]
    write("precision", targets, lambda row, target: f"precision@10 {target}")
    chosen = best_threshold(record, DEFAULTS)
    columns = ["precision", "recall", *(f"recall {kind}" for kind in EDITS)]
    write("duplicates", columns, lambda row, column: f"{column} at {chosen}")
    own = {row: best_threshold(record, row) for row in reps}
    write(
        "duplicates_own",
        columns,
        lambda row, column: f"{column} at {own[row]}",
        first=[("threshold", lambda row: str(own[row]))],
    )
    outliers = [k for k in runs[0][reps[-1]] if k.startswith("outliers")]
    write("outliers", outliers, lambda row, column: column)

    strong, frozen, seen = "ClusterFit(MobileNetV2)", "MobileNetV2 (ImageNet, frozen)", targets[0]

    def mean(row, key):
        return float(np.mean([run[row][key] for run in runs]))

    lines = [
        f"The default threshold, {chosen}, is the median over seeds of the threshold of "
        f"best F1 for {DEFAULTS} on edited copies of D_cf's images.",
        "",
    ]
    for what, key in (
        ("precision@10", f"precision@10 {seen}"),
        ("duplicate recall at the default threshold", f"recall at {chosen}"),
    ):
        ours, theirs = mean(strong, key), mean(frozen, key)
        verdict = "leads" if ours > theirs else "does not lead"
        lines.append(
            f"- {what} on {seen}: {strong} {ours:.3f} against {frozen} {theirs:.3f}: it "
            f"{verdict} (target: lead)."
        )
    (out / "results_neighbors_targets.rst").write_text("\n".join(lines) + "\n")

    writes = load("perf_write_features")
    rows = [("run", "seconds", "RSS before (MB)", "peak RSS (MB)")]
    for name, key in (("write_features", "write_features"), ("transform", "transform_in_memory")):
        r = writes[key]
        rows.append(
            (name, f"{r['seconds']:.1f}", f"{r['rss_before_mb']:.0f}", f"{r['peak_rss_mb']:.0f}")
        )
    resume, peak = writes["resume"], writes["write_features"]["peak_rss_mb"]
    summary = (
        f"{writes['n_files']} PNG files, chunks of {writes['chunk_size']}, "
        f"{writes['feature_width']} features per image. The write's peak memory, "
        f"{peak:.0f} MB, is {'under' if peak < 1024 else 'over'} the target of 1,024 MB. "
        "Killed with "
        f"{resume['chunks_done_when_killed']} of {resume['chunks']} chunks on disk, the "
        f"resumed write transformed {resume['images_transformed_on_resume']} images (the "
        f"missing chunks hold {resume['images_of_the_missing_chunks']}); its features "
        + ("equal" if resume["features_equal_uninterrupted"] else "differ from")
        + " the uninterrupted write's.\n\n"
    )
    (out / "results_write_features.rst").write_text(summary + _table(rows, writes))


def _cpu_tables(out, load):
    """The CPU modes of perf_cpu.py: kernels, roofline, training speeds, a default fit."""
    from perf_cpu import SIDES

    record = load("perf_cpu")
    modes = record["modes"]
    rows = [("mode", "kernels, bfloat16", '"auto" trains in', "GEMM GFLOP/s", "MFLOP/image")]
    for mode, found in modes.items():
        rows.append(
            (
                mode,
                found["kernels and bfloat16"],
                found["auto_precision"],
                f"{found['gemm_gflops']:.0f}",
                f"{found['training_flops_per_image'] / 1e6:.1f}",
            )
        )
    rows_speed = [("mode", "side", "images/s", "share of GEMM rate")]
    for mode, found in modes.items():
        for side in SIDES:
            speeds = found["images_per_second"][side]
            median = statistics.median(speeds)
            share = median * found["training_flops_per_image"] / 1e9 / found["gemm_gflops"]
            rows_speed.append((mode, side, f"{median:.0f}", f"{share:.2f}"))
    rows_fit = [("mode", "trains in", "fit (s)", "RotNet (s)", "N_cf (s)", "the rest (s)")]
    for mode, found in modes.items():
        fit, stages = found["default_fit"], found["default_fit"]["stage_seconds"]
        rest = fit["seconds"] - stages["rotnet"] - stages["clusterfit"]
        rows_fit.append(
            (
                mode,
                found["auto_precision"],
                f"{fit['seconds']:.0f}",
                f"{stages['rotnet']:.0f}",
                f"{stages['clusterfit']:.0f}",
                f"{rest:.0f}",
            )
        )
    (out / "results_cpu.rst").write_text(_rules(rows) + "\n" + _table(rows_speed, record))
    (out / "results_cpu_fit.rst").write_text(_table(rows_fit, record))
