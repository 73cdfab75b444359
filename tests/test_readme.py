"""README.rst's examples run as written, with no warning; its figures are committed ones."""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.rst").read_text()


def literal_blocks(text: str) -> list[str]:
    """The literal blocks of reStructuredText ``text``: the indented lines after a ``::``."""
    blocks, lines = [], text.splitlines()
    for number, line in enumerate(lines):
        if not line.rstrip().endswith("::"):
            continue
        block = []
        for following in lines[number + 1 :]:
            if following.strip() and not following.startswith(" "):
                break
            block.append(following)
        blocks.append("\n".join(block).strip("\n"))
    return [_dedent(block) for block in blocks]


def _dedent(block: str) -> str:
    lines = block.splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines)


PYTHON = [block for block in literal_blocks(README) if re.search(r"^(from|import) ", block, re.M)]
SHELL = [block for block in literal_blocks(README) if block not in PYTHON]


def _run_quietly(code: str) -> dict:
    """Execute ``code`` and return its names; fail on any warning it issues.

    It runs on one thread (torch's and the BLAS'): the examples leave every
    library its own thread count, every core, which is slow on a machine
    shared with other jobs.
    """
    namespace: dict = {"__name__": "__readme__"}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1), warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            exec(compile(code, "README.rst", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    assert [str(w.message) for w in record] == []
    return namespace


def test_the_readme_has_the_examples_and_commands_it_promises():
    assert len(PYTHON) == 2
    commands = "\n".join(SHELL)
    assert "python -m pip install . && python examples/demo_digits.py" in commands
    assert 'python -m pip install ".[test]" && python -m pytest' in commands
    assert "torch==2.14.1 torchvision==0.29.1 --index-url" in commands
    assert (ROOT / "examples" / "demo_digits.py").is_file()


@pytest.mark.slow
def test_the_first_example_runs_without_a_warning(capsys):
    names = _run_quietly(PYTHON[0])
    X = names["X"]
    assert names["features"].shape[0] == len(X)
    assert "N_cf" in capsys.readouterr().out
    names["pipe"].set_params(
        clusterfittransformer__max_epochs=1, clusterfittransformer__extractor_epochs=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert names["pipe"].fit(X[:300], names["y"][:300]).score(X[300:400], names["y"][300:400])


def test_the_own_folder_example_runs_on_a_folder_of_digits(digits, tmp_path, capsys):
    folder = tmp_path / "digits as files"
    folder.mkdir()
    for index, image in enumerate(digits[0][:60].reshape(-1, 8, 8)):
        Image.fromarray(np.round(image * 255 / 16).astype(np.uint8)).save(folder / f"{index}.png")
    code = PYTHON[1]
    assert 'Path("my_images")' in code
    code = code.replace('Path("my_images")', f"Path({str(folder)!r})")
    names = _run_quietly(code)
    assert names["features"].shape[0] == 60
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 60 and all(re.fullmatch(r"\d+\.png \d+", line) for line in printed)
