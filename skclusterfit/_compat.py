"""What depends on the versions installed: warnings that point at the caller, torchvision.

- :func:`warn` issues a warning attributed to the first line of code outside
  this package and scikit-learn (whose wrappers, ``Pipeline`` and
  ``_fit_context``, sit between the user's call and the package), however
  deep the call that warns.
- :func:`import_torchvision` imports torchvision, or says in one sentence that
  its compiled operators do not match the installed torch and how to fix it.
"""

from __future__ import annotations

import os
import sys
import warnings
from importlib import metadata

import sklearn
import torch

# Frames in these folders are not the user's code.
_NOT_THE_CALLER = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(os.path.abspath(sklearn.__file__)) + os.sep,
)


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn with ``message``, attributed to the user's line that led here."""
    if sys.version_info >= (3, 12):
        warnings.warn(message, category, skip_file_prefixes=_NOT_THE_CALLER)
    else:
        warnings.warn(message, category, stacklevel=_caller_level())


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside ``_NOT_THE_CALLER``, seen from ``warn``."""
    frame, level = sys._getframe(2), 2  # level 1 is warn itself
    while frame is not None and frame.f_code.co_filename.startswith(_NOT_THE_CALLER):
        frame, level = frame.f_back, level + 1
    return level


def import_torchvision():
    """The torchvision module, or an ImportError naming the versions that do not match.

    A torchvision built for another torch (for example a CUDA build from PyPI
    beside a CPU-only torch) fails to register its compiled operators when it
    is imported, with ``RuntimeError: operator torchvision::nms does not exist``.
    """
    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        raise ImportError(_mismatch(str(exc))) from exc
    return torchvision


def _mismatch(error: str) -> str:
    """One sentence: both versions, and the command that installs the matching torchvision."""
    try:
        installed = metadata.version("torchvision")
    except metadata.PackageNotFoundError:
        installed = "(version unknown)"
    release, _, build = torch.__version__.partition("+")
    major, minor, patch = (release.split(".") + ["0", "0"])[:3]
    # torchvision 0.(m + 15).p is built for torch 2.m.p (since torch 2.0, torchvision 0.15).
    pin = f"==0.{int(minor) + 15}.{patch}" if major == "2" and minor.isdigit() else ""
    index = f" --index-url https://download.pytorch.org/whl/{build}" if build else ""
    return (
        f"torchvision {installed} does not match torch {torch.__version__} (its compiled "
        f"operators fail to load: {error.strip()}); install the torchvision built for this "
        f'torch with: python -m pip install "torchvision{pin}"{index}'
    )
