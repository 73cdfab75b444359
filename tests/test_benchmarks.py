"""The benchmarks' runner, their committed results and the README table drawn from them."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
pytestmark = pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="needs the repository")


def _module(name):
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_study_has_its_script_and_every_committed_result_its_study():
    studies = _module("run").STUDIES
    for name, (script, *_) in studies.items():
        assert (BENCHMARKS / script).is_file(), name
    for path in sorted((BENCHMARKS / "results").glob("*.json")):
        if path.stem.endswith("_quick"):  # smoke runs' files, git-ignored, never committed
            continue
        assert path.stem in studies, f"{path.name} comes from no registered study"
        script = studies[path.stem][0]
        recorded = json.loads(path.read_text())["command"]
        assert recorded.split()[:2] == ["python", f"benchmarks/{script}"], path.name


def test_ci_smoke_runs_every_study_through_the_runner():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python benchmarks/run.py --all --quick" in ci
    assert not [line for line in ci.splitlines() if line.startswith("python benchmarks/bench_")]


def test_runner_lists_the_studies_and_refuses_an_unknown_one():
    run = [sys.executable, str(BENCHMARKS / "run.py")]
    listed = subprocess.run([*run, "--list"], capture_output=True, text=True, check=True)
    assert "label_noise_options      python benchmarks/bench_label_noise.py --whitening-and" in (
        listed.stdout
    )
    refused = subprocess.run([*run, "no_such_study"], capture_output=True, text=True)
    assert refused.returncode == 2 and "no_such_study" in refused.stderr


def test_readme_digits_table_is_the_one_rendered_from_its_results():
    tables = _module("_tables")
    record = json.loads((BENCHMARKS / "results" / "digits.json").read_text())
    assert tables.digits_table(record).count("\n") == 3 + len(record["scores"]) + 1
    rendered = tables.digits_table(record, **tables.README_DIGITS)
    assert rendered in (ROOT / "README.rst").read_text(), (
        "README.rst's digits table differs from benchmarks/results/digits.json; "
        "its table, rendered by benchmarks/_tables.py, reads:\n" + rendered
    )


def test_every_docs_table_renders_from_the_committed_results(tmp_path, monkeypatch):
    # docs/conf.py renders these on every build; a record made before a
    # benchmark gained a side (or a table reading a field no record has)
    # must fail here, not only in the documentation build.
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    _module("_tables").write_all(tmp_path)
    ratios = (tmp_path / "results_loop_ratios.rst").read_text()
    assert "package / bare" in ratios


def test_every_committed_markdown_is_what_its_script_renders_from_its_json(monkeypatch):
    # A study's markdown is written from its JSON by the script's renderer;
    # a renderer that cannot read an older record, or a header field whose
    # name a study also uses for its own results, must fail here rather than
    # in the benchmarks' smoke run.
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    studies = _module("run").STUDIES
    for path in sorted((BENCHMARKS / "results").glob("*.json")):
        if path.stem.endswith("_quick"):
            continue
        module = _module(Path(studies[path.stem][0]).stem)
        renderers = [f for name, f in vars(module).items() if name.endswith("markdown")]
        record = json.loads(path.read_text())
        rendered = []
        for render in renderers:
            try:
                rendered.append(render(record))
            except KeyError:  # the renderer of another variant of the same script
                continue
        assert path.with_suffix(".md").read_text() in rendered, path.name


def test_a_held_out_study_resumes_with_the_seeds_its_record_lacks(tmp_path, monkeypatch):
    # A study of an hour per seed is run a seed per session: a resumed run
    # keeps the record's seeds and scores, runs only the next seeds, and says
    # which run gave which seeds.
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    common = _module("_common")
    settings = (50, [7, 8, 9], 1, 1, 5)
    monkeypatch.setattr(common, "held_out_study", lambda quick: (settings, None, None, {}))
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(
        common,
        "save",
        lambda stem, quick, fields, markdown: common.write(
            {**common.header(), **fields}, stem, quick, markdown, folder=tmp_path
        ),
    )

    def probe_all(scores, reps, targets, seed):
        scores.setdefault("target", {}).setdefault("row", {}).setdefault("linear", []).append(seed)

    monkeypatch.setattr(common, "probe_all", probe_all)
    fitted = []

    def representations(X, seed, settings, targets):
        fitted.append(seed)
        return {}

    def markdown(record):
        return "\n".join(common.markdown_header("study", record))

    common.run_held_out_study("study", False, representations, markdown, seeds=1)
    first = common.previous_record("study")
    assert first["seeds"] == [7] and "seed_runs" not in first
    common.run_held_out_study("study", False, representations, markdown, seeds=2, previous=first)
    second = common.previous_record("study")
    assert fitted == [7, 8]
    assert second["seeds"] == [7, 8] and len(second["fit_seconds"]) == 2
    assert second["scores"]["target"]["row"]["linear"] == [7, 8]
    assert [run["seeds"] for run in second["seed_runs"]] == [[7], [8]]
    assert "- seeds [8]:" in (tmp_path / "study.md").read_text()
    with pytest.raises(SystemExit, match="other settings"):
        common.run_held_out_study(
            "study", False, representations, markdown, previous={**second, "n_images": 60}
        )


def test_gpu_check_summary_shows_the_step_profile_and_compile_sections(monkeypatch):
    # Sections that only a GPU machine runs in full: their summary lines must
    # render from what they record, failed sides included, before a GPU is lent.
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    gpu_check = _module("gpu_check")
    compiled = json.loads((BENCHMARKS / "results" / "perf_compile.json").read_text())
    compiled["training"]["errors"] = {"compiled, CUDA graphs, bfloat16": "RuntimeError: no cc"}
    step = {
        "batch_size": 256,
        "milliseconds_per_step": 2.5,
        "host_operator_calls_per_step": 900.0,
        "cuda_kernels_per_step": 310.0,
        "gpu_milliseconds_per_step": 0.9,
        "gpu_busy_share": 0.36,
    }
    record = json.loads((BENCHMARKS / "results" / "gpu_check.json").read_text())
    record["sections"] = {"step_profile": step, "compile": compiled}
    text = gpu_check.markdown(record)
    assert "310 CUDA kernels taking 0.90 ms of GPU time (the GPU busy 36% of the step)" in text
    assert "| compiled, float32 | 51.3 |" in text
    assert "- compiled, CUDA graphs, bfloat16 failed: `RuntimeError: no cc`" in text
    step.update(cuda_kernels_per_step=None, gpu_milliseconds_per_step=None, gpu_busy_share=None)
    compiled["inference"] = {"errors": {"compiled": "RuntimeError: no cc"}}
    text = gpu_check.markdown(record)
    assert "2.50 ms, 900 host operator calls." in text and "compiled failed" in text


def test_the_emulated_bfloat16_slowdown_the_package_warns_of_is_the_recorded_one(monkeypatch):
    from skclusterfit._devices import EMULATED_BFLOAT16_SLOWDOWN

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    record = json.loads((BENCHMARKS / "results" / "perf_cpu.json").read_text())
    slowdown = _module("perf_cpu").emulated_bfloat16_slowdown(record)
    assert round(slowdown, 1) == EMULATED_BFLOAT16_SLOWDOWN
    assert not record["modes"]["avx2"]["native_bfloat16"]


def test_the_default_duplicate_threshold_is_the_one_its_study_chose(monkeypatch):
    from skclusterfit.neighbors import DUPLICATE_THRESHOLD

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    record = json.loads((BENCHMARKS / "results" / "neighbors.json").read_text())
    study = _module("bench_neighbors")
    assert len(record["seeds"]) == 3
    assert study.best_threshold(record, study.DEFAULTS) == DUPLICATE_THRESHOLD


def test_cpu_avx2_reruns_a_study_with_the_kernels_held_to_avx2(tmp_path):
    # torch reads ATEN_CPU_CAPABILITY when it loads, so --cpu avx2 restarts the
    # command with it (and oneDNN's and MKL's) set; the results get their own stem.
    script = tmp_path / "study.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(BENCHMARKS)!r})\n"
        "import _common as common, torch\n"
        "common.arguments('A study.').parse_args()\n"
        "print(torch.backends.cpu.get_cpu_capability(), common._stem('s', True),\n"
        "      common.header()['cpu'].split('; ')[1:])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY",)}
    run = [sys.executable, str(script), "--cpu", "avx2"]
    done = subprocess.run(run, capture_output=True, text=True, check=True, env=env)
    capability, stem, cpu = done.stdout.split(" ", 2)
    assert (capability, stem) == ("AVX2", "s_avx2_quick")
    assert "AVX2 kernels, bfloat16 emulated" in cpu and "float32" in cpu
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in cpu and "MKL_ENABLE_INSTRUCTIONS=AVX2" in cpu
