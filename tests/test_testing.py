"""The hooks module for benchmarks and docs, and the rule that they use nothing else private."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from skclusterfit import _testing

ROOT = Path(__file__).resolve().parents[1]
BFLOAT16 = torch.autocast("cpu", torch.bfloat16)


def _images(n=32):
    rng = np.random.RandomState(0)
    return _testing.ArrayImages(rng.randint(0, 256, (n, 8, 8, 1)).astype(np.uint8), (0.0, 255.0))


def _inference(module):
    return _testing.infer(module, _images(), batch_size=16, device=torch.device("cpu"))


def _augmented():
    images = torch.rand(16, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    return _testing.augment(images, "strong", torch.Generator().manual_seed(1))


def test_float32_parts_runs_a_part_as_without_autocast():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten())
    plain = _inference(module)
    with BFLOAT16:
        lowered = _inference(module)
        with _testing.float32_parts("inference"):
            kept = _inference(module)
        after = _inference(module)
    assert not np.array_equal(np.asarray(lowered, np.float32), np.asarray(plain, np.float32))
    np.testing.assert_array_equal(np.asarray(kept), np.asarray(plain))
    np.testing.assert_array_equal(np.asarray(after), np.asarray(lowered))


def test_augmentation_runs_in_float32_under_autocast():
    # Nothing in it (crop grids, grid_sample, contrast) is lowered by autocast.
    plain = _augmented()
    with BFLOAT16:
        np.testing.assert_array_equal(_augmented().numpy(), plain.numpy())


def test_float32_parts_refuses_a_part_it_does_not_know():
    with pytest.raises(ValueError, match="unknown parts"), _testing.float32_parts("embedings"):
        pass


def test_observing_clustering_runs_each_clustering_through_the_observer():
    from sklearn.datasets import load_digits

    from skclusterfit import ClusterFitTransformer

    X = load_digits().data[:120]
    params = dict(n_clusters=[4, 6], extractor_epochs=1, max_epochs=1, random_state=0)
    calls = []

    def observer(cluster, *args, **kwargs):
        calls.append(kwargs["n_clusters"])
        return cluster(*args, **kwargs)

    with _testing.observing_clustering(observer):
        observed = ClusterFitTransformer(**params).fit(X)
    plain = ClusterFitTransformer(**params).fit(X)
    assert calls == [[4, 6]]  # one call clusters every entry of n_clusters
    for a, b in zip(observed.labels_all_, plain.labels_all_, strict=True):
        np.testing.assert_array_equal(a, b)
    ClusterFitTransformer(**params).fit(X)
    assert len(calls) == 1  # nothing observed outside the block


def _package_imports(tree):
    """(line, module, local name) of every import from the package in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("skclusterfit"):
            for alias in node.names:
                dunder = alias.name.startswith("__")
                private = node.module == "skclusterfit" and alias.name[0] == "_" and not dunder
                module = f"{node.module}.{alias.name}" if private else node.module
                yield node.lineno, module, alias.asname or alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("skclusterfit"):
                    yield node.lineno, alias.name, alias.asname or alias.name.split(".")[0]


def _outside_files():
    """The Python files of the repository outside the package and its tests."""
    for folder in ("benchmarks", "docs", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if not {"_build", "auto_examples"} & set(path.parts):
                yield path
    yield ROOT / "conftest.py"


needs_repository = pytest.mark.skipif(
    not (ROOT / "benchmarks").is_dir(), reason="needs the repository"
)


@needs_repository
def test_outside_the_package_only_the_hooks_module_is_imported_privately():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _outside_files()
        for line, module, _ in _package_imports(ast.parse(path.read_text()))
        if "._" in module
        and not module.startswith("skclusterfit._testing")
        and module != "skclusterfit.__version__"
    ]
    assert not found, "import these through skclusterfit._testing:\n" + "\n".join(found)


def _root(node):
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _assigned_package_attributes(tree):
    """Lines where ``tree`` assigns to an attribute of something imported from the package."""
    names = {local for _, _, local in _package_imports(tree)}
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            targets = [t for t in targets if isinstance(t, ast.Attribute)]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
            "setattr",
            "delattr",
        ):
            targets = node.args[:1]
        if any(_root(target) in names for target in targets):
            yield node.lineno


def test_the_assignment_check_finds_a_monkeypatch():
    source = "import skclusterfit._training\nskclusterfit._training.augment = print\n"
    source += "from skclusterfit import _testing as t\nsetattr(t, 'infer', print)\n"
    assert list(_assigned_package_attributes(ast.parse(source))) == [2, 4]


@needs_repository
def test_benchmarks_assign_to_no_attribute_of_the_package():
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "benchmarks").rglob("*.py"))
        for line in _assigned_package_attributes(ast.parse(path.read_text()))
    ]
    assert not found
