"""What every benchmark records: date, command, machine, versions; and where."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import sklearn
import torch
import torchvision

import skclusterfit

RESULTS = Path(__file__).parent / "results"


def header(script: str, quick: bool) -> dict:
    """Date, exact command, machine and versions of this run."""
    return {
        "date": datetime.date.today().isoformat(),
        "command": f"python benchmarks/{script}" + (" --quick" if quick else ""),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
        f"torch threads {torch.get_num_threads()}",
        "versions": f"skclusterfit {skclusterfit.__version__}, python "
        f"{sys.version.split()[0]}, torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, scikit-learn {sklearn.__version__}, numpy "
        f"{np.__version__}, faiss {_faiss_version()}",
    }


def markdown_header(title: str, record: dict) -> list[str]:
    return [
        f"# {title} ({record['date']})",
        "",
        f"Command: `{record['command']}`  ",
        f"Machine: {record['machine']}  ",
        f"Versions: {record['versions']}",
        "",
    ]


def write(stem: str, quick: bool, record: dict, markdown: str) -> None:
    """Save ``record`` as JSON and ``markdown`` under results/ (``*_quick`` in quick mode)."""
    RESULTS.mkdir(exist_ok=True)
    stem = f"{stem}_quick" if quick else stem
    (RESULTS / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown)
    print(markdown)


def _faiss_version() -> str:
    try:
        import faiss
    except ImportError:
        return "not installed"
    return faiss.__version__
