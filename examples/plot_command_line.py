"""
The command line on a folder of images
======================================

``skclusterfit fit FOLDER --out DIR`` does, from a shell, what the other
examples do in Python: it fits ClusterFit on every image under ``FOLDER`` and
writes the model, the features, the clusters, the near-duplicate groups and,
when the images lie in class sub-folders, the representation report.
``skclusterfit transform`` and ``skclusterfit duplicates`` reuse the model
file on other folders. Bad input gets one line and exit status 2.

The folder here holds 300 digits as PNG files in two sub-folders, ``even``
and ``odd``, and an exact copy of one of them. The commands run through
``python -m skclusterfit``, the same as the ``skclusterfit`` console script.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from skclusterfit.datasets import load_digits

digits = load_digits()
root = Path(tempfile.mkdtemp(prefix="skclusterfit-cli-"))
for index in range(300):
    folder = root / "images" / ("even" if digits.target[index] % 2 == 0 else "odd")
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(digits.images[index]).save(folder / f"digit_{index:04d}.png")
copy = root / "images" / "even" / "copy_of_digit_0000.png"
copy.write_bytes((root / "images" / "even" / "digit_0000.png").read_bytes())


def skclusterfit(*arguments):
    """Run the command line; print its status and what it wrote to stderr."""
    found = subprocess.run(
        [sys.executable, "-m", "skclusterfit", *map(str, arguments)],
        capture_output=True,
        text=True,
    )
    print(f"$ skclusterfit {' '.join(map(str, arguments))}".replace(str(root), "<root>"))
    lines = found.stderr.strip().splitlines()
    print("\n".join(line for line in lines if "%|" not in line).replace(str(root), "<root>"))
    print(f"exit status {found.returncode}")


# %%
# Fit on the folder
# -----------------
# Fewer epochs and clusters than the defaults keep the example short.
skclusterfit(
    "fit",
    root / "images",
    "--out",
    root / "out",
    "--n-clusters",
    "10",
    "--max-epochs",
    "10",
    "--extractor-epochs",
    "5",
)

# %%
# What it wrote
# -------------
for path in sorted((root / "out").iterdir()):
    inside = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    print(
        path.name
        + (
            "/  " + ", ".join(inside[:4]) + (", ..." if len(inside) > 4 else "")
            if path.is_dir()
            else ""
        )
    )

# %%
# The start of the near-duplicate groups, and of the representation report
# (the sub-folders ``even`` and ``odd`` as classes). At the default threshold
# many look-alike digits are grouped besides the copy; ``--threshold`` sets
# another (:ref:`sphx_glr_auto_examples_plot_duplicates.py` shows one way to
# choose it).
groups = (root / "out" / "duplicates" / "duplicates.csv").read_text().splitlines()
print("\n".join(groups[:5]).replace(str(root), "<root>"))
print(f"... {len(groups) - 1} rows in all")
print("\n".join((root / "out" / "report.txt").read_text().splitlines()[:8]))

# %%
# The model on other images
# -------------------------
# ``transform`` writes features a chunk at a time; run again on the same
# ``--out``, it resumes an interrupted run and skips the chunks written.
skclusterfit("transform", root / "out" / "model.pt", root / "images", "--out", root / "more")

# %%
# Bad input
# ---------
# An empty folder, an unreadable image file, more clusters than images: one
# line, exit status 2, and nothing written.
(root / "empty").mkdir()
skclusterfit("fit", root / "empty", "--out", root / "nothing")
print("written:", (root / "nothing").exists())
