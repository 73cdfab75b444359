"""The project's promises to a newcomer: README commands, the demo, the public API."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.rst").read_text()
    return re.findall(r"^    (python -m pip install .*)$", text, flags=re.M)


def test_readme_gives_the_demo_and_test_commands_and_ci_runs_the_latter():
    commands = [c for c in _readme_commands() if "&&" in c]
    assert len(commands) == 2
    demo, tests = commands
    assert "demo_digits.py" in demo and "pytest" in tests
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_the_documented_docs_build_is_the_one_ci_runs():
    install = (ROOT / "docs" / "install.rst").read_text()
    command = re.search(r"^    (python -m pip install \"\.\[docs\]\".*)$", install, flags=re.M)
    assert command and "sphinx -W" in command.group(1)
    assert command.group(1) in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "examples").is_dir(), reason="needs the repository")
def test_demo_prints_the_probe_table():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo_digits.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    rows = [
        line for line in result.stdout.splitlines() if re.search(r"\d\.\d{3}\s+\d\.\d{3}$", line)
    ]
    assert [row.split("  ")[0] for row in rows] == [
        "raw pixels",
        "N_pre (RotNet) features",
        "ClusterFit features",
    ]
    # Other libraries' warnings come and go with their versions; none may come
    # from this package or the demo.
    warned_in = re.findall(r"^(\S+?):\d+: \w*Warning\b", result.stderr, flags=re.M)
    ours = [path for path in warned_in if "skclusterfit" in path or path.startswith(str(ROOT))]
    assert not ours, result.stderr


def test_public_api():
    import skclusterfit

    assert sorted(skclusterfit.__all__) == [
        "ClusterFitTransformer",
        "__version__",
        "datasets",
        "load",
        "metrics",
    ]
    assert sorted(skclusterfit.metrics.__all__) == [
        "ClusterDisplay",
        "RepresentationReport",
        "adjusted_rand_score",
        "cluster_accuracy",
        "few_shot_score",
        "knn_score",
        "linear_probe_score",
        "normalized_mutual_info_score",
        "probe_scores",
        "representation_report",
    ]
