"""The project's promises to a newcomer: README commands, the demo, the public API."""

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.rst").read_text()
    return re.findall(r"^    (python -m pip install .*)$", text, flags=re.M)


def _ci_module():
    spec = importlib.util.spec_from_file_location(
        "readme_commands", ROOT / ".ci" / "readme_commands.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (ROOT / ".ci").is_dir(), reason="needs the repository")
def test_ci_runs_the_readme_commands_as_read_from_the_readme_in_a_fresh_environment():
    commands = [c for c in _readme_commands() if "&&" in c]
    assert len(commands) == 2
    demo, tests = commands
    assert "demo_digits.py" in demo and "pytest" in tests
    readme = (ROOT / "README.rst").read_text()
    assert _ci_module().fresh_machine_commands(readme) == [demo, tests]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv" in ci and "python .ci/readme_commands.py" in ci
    # The commands are run as read, never typed again; the extras come after them.
    assert tests not in ci and demo not in ci
    assert ci.index("readme_commands.py") < ci.index('".[benchmarks')
    assert "python -m pytest --no-native-bfloat16\n" in ci


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
        "neighbors",
    ]
    assert sorted(skclusterfit.neighbors.__all__) == [
        "DUPLICATE_THRESHOLD",
        "DuplicatesDisplay",
        "ImageIndex",
        "NeighborsDisplay",
        "OutliersDisplay",
    ]
    assert sorted(skclusterfit.datasets.__all__) == [
        "export_clusters",
        "export_duplicates",
        "load_digits",
        "load_fashion_mnist",
        "load_features",
        "load_mnist_subset",
        "write_features",
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


def _package_imports():
    """{module: package modules it imports at module level}, over skclusterfit/."""
    graph = {}
    for path in (ROOT / "skclusterfit").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        package = parts[:-1]  # what a relative import starts from
        name = ".".join(package if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.parse(path.read_text()).body:  # top level: what runs at import
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("skclusterfit"):
                target = node.module
            else:
                continue
            if node.module:  # "from . import _x" runs _x, not the package's __init__ again
                found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        graph[name] = found - {name}
    return {name: {t for t in targets if t in graph} for name, targets in graph.items()}


def test_the_package_imports_flow_one_way_and_its_modules_stay_small():
    graph = _package_imports()
    assert "skclusterfit._transformer" in graph and graph["skclusterfit._transformer"]
    state = {}

    def visit(name, trail):
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", "import circle: " + " -> ".join([*trail, name])
        state[name] = "open"
        for target in sorted(graph[name]):
            visit(target, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        visit(name, [])
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "skclusterfit").rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 500 and path.name != "_transformer.py"
    }
    assert not long, f"modules over 500 lines: {long}"
    source = (ROOT / "skclusterfit" / "_transformer.py").read_text()
    (cls,) = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)]
    assert cls.end_lineno - cls.lineno + 1 <= 480  # docstring included
