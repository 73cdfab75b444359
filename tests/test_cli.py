"""The command line: skclusterfit fit|transform|duplicates on a folder of images."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from skclusterfit import load
from skclusterfit._cli import main
from skclusterfit.datasets import load_features

TINY = ["--n-clusters", "5", "--max-epochs", "1", "--extractor-epochs", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, digits):
    """60 digit images as PNG files in two class sub-folders, one an exact copy of another."""
    root = tmp_path_factory.mktemp("images")
    X, y = digits
    for i in range(60):
        sub = root / ("even" if y[i] % 2 == 0 else "odd")
        sub.mkdir(exist_ok=True)
        Image.fromarray(np.round(X[i].reshape(8, 8) * 255 / 16).astype(np.uint8)).save(
            sub / f"{i:03d}.png"
        )
    (root / "even" / "copy_of_000.png").write_bytes((root / "even" / "000.png").read_bytes())
    (root / "notes.txt").write_text("not an image: skipped")
    return root


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    return status, capsys.readouterr().err


def test_fit_writes_everything_it_finds(folder, tmp_path, capsys):
    out = tmp_path / "out"
    status, err = _run(capsys, "fit", folder, "--out", out, *TINY, "--threshold", "1e-6")
    assert status == 0, err
    assert "61 images under" in err and "written to" in err
    model = load(out / "model.pt")
    stored = load_features(out / "features")
    assert len(stored.paths) == 61 and stored.features.shape[0] == 61
    np.testing.assert_allclose(stored.features, model.transform(stored.paths), atol=1e-5)
    with open(out / "clusters" / "clusters.csv", newline="") as stream:
        assert len(list(csv.DictReader(stream))) == 61
    with open(out / "duplicates" / "duplicates.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert sorted(row["path"].rsplit("/", 1)[1] for row in rows) == ["000.png", "copy_of_000.png"]
    assert {row["group"] for row in rows} == {"0"}
    assert sorted(p.name for p in (out / "duplicates" / "group_0000").iterdir()) == sorted(
        row["file"].split("/")[1] for row in rows
    )
    report = (out / "report.txt").read_text()
    assert "N_cf" in report and "raw pixels" in report
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left


def test_transform_and_duplicates_with_a_fitted_model(folder, tmp_path, capsys):
    out = tmp_path / "fitted"
    assert (
        _run(capsys, "fit", folder, "--out", out, *TINY, "--quiet", "--threshold", "1e-6")[0] == 0
    )
    status, err = _run(capsys, "transform", out / "model.pt", folder, "--out", tmp_path / "f")
    assert status == 0, err
    assert np.array_equal(
        load_features(tmp_path / "f").features, load_features(out / "features").features
    )
    assert _run(capsys, "transform", out / "model.pt", folder, "--out", tmp_path / "f")[0] == 0
    groups = tmp_path / "groups.csv"
    status, err = _run(
        capsys, "duplicates", out / "model.pt", folder, "--out", groups, "--threshold", "1e-6"
    )
    assert status == 0 and "1 groups of near-duplicates" in err
    with open(out / "duplicates" / "duplicates.csv", newline="") as stream:
        exported = [row[:3] for row in csv.reader(stream)]
    with open(groups, newline="") as stream:
        assert list(csv.reader(stream)) == exported


@pytest.mark.parametrize("bad", ["empty folder", "unreadable file", "K too large", "bomb"])
def test_bad_input_gives_one_line_and_status_2_and_writes_nothing(
    bad, folder, tmp_path, capsys, monkeypatch
):
    images = tmp_path / "images"
    images.mkdir()
    options = list(TINY)
    if bad != "empty folder":
        for path in sorted(folder.rglob("*.png"))[:20]:
            (images / path.name).write_bytes(path.read_bytes())
    if bad == "unreadable file":
        (images / "015.png").write_text("not a PNG")
    if bad == "K too large":
        options[1] = "50"
    if bad == "bomb":
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
        Image.new("L", (60, 60)).save(images / "zz_large.png")
    out = tmp_path / "out"
    status, err = _run(capsys, "fit", images, "--out", out, *options, "--quiet")
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skclusterfit: error: "), err
    expected = {
        "empty folder": "holds no image files",
        "unreadable file": "Cannot decode image file",
        "K too large": "n_clusters=50 is larger than the number of samples",
        "bomb": "could be decompression bomb",
    }[bad]
    assert expected in lines[0]
    if bad in ("unreadable file", "bomb"):
        assert ("015.png" if bad == "unreadable file" else "zz_large.png") in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]  # nothing half-written


def test_an_existing_output_is_refused(folder, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    status, err = _run(capsys, "fit", folder, "--out", tmp_path / "out", *TINY)
    assert status == 2 and "is not an empty folder" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
    status, err = _run(capsys, "transform", tmp_path / "none.pt", folder, "--out", tmp_path / "f")
    assert status == 2 and "none.pt" in err
    status, err = _run(capsys, "fit", folder, "--out", folder / "results", *TINY)
    assert status == 2 and "lies inside" in err and not (folder / "results").exists()


def test_the_console_script_has_help_and_usage_errors():
    found = subprocess.run(
        [sys.executable, "-m", "skclusterfit", "--help"], capture_output=True, text=True
    )
    assert found.returncode == 0
    assert all(command in found.stdout for command in ("fit", "transform", "duplicates"))
    found = subprocess.run(
        [sys.executable, "-m", "skclusterfit", "fit"], capture_output=True, text=True
    )
    assert found.returncode == 2 and "--out" in found.stderr


def test_fit_options_left_out_keep_the_estimators_defaults():
    from skclusterfit import ClusterFitTransformer
    from skclusterfit._cli import FIT_OPTIONS, _parser

    defaults = ClusterFitTransformer().get_params()
    fit = _parser()._subparsers._group_actions[0].choices["fit"]
    for action in fit._actions:
        name = action.dest
        if name in FIT_OPTIONS and name != "random_state":
            assert action.default is None, name
            if defaults[name] is not None:
                assert f"(default: {defaults[name]})" in action.help, name
