"""Sphinx configuration of the skclusterfit documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (see README).
"""

import os
import sys
import warnings
from pathlib import Path

import skclusterfit

HERE = Path(__file__).parent
ROOT = HERE.parent

project = "skclusterfit"
author = "the skclusterfit developers"
copyright = "2026, the skclusterfit developers"
version = release = skclusterfit.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]

html_theme = "pydata_sphinx_theme"
html_static_path = ["_static"]
html_title = f"skclusterfit {release}"
html_theme_options = {"show_toc_level": 2, "navigation_with_keys": False}

# Examples run in a non-interactive backend; torch uses every core it is given.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(demo_digits|torchrun_clusterfit)\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skclusterfit",),
}


# The committed benchmark results, as the tables the Benchmarks page includes.
sys.path.insert(0, str(ROOT / "benchmarks"))
import _tables  # noqa: E402

_tables.write_all(HERE / "generated")
