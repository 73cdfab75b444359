"""Stage 1: turn the ``extractor`` parameter into a frozen embedding network N_pre.

Whatever the kind of extractor, the result is an ``nn.Module`` mapping images
(N, C, H, W) scaled to [0, 1] to features (N, d), with no trainable parameters:

- ``"rotnet"``: a network trained on the images to predict their rotation;
- ``"supervised"``: a network trained on the labels ``y`` given to ``fit``;
- ``"random"``: a randomly initialised network, the control for the others;
- a torchvision model name: ImageNet weights read from the local torch cache;
- an ``nn.Module``, or a method of one (such as a fitted network's
  ``features``): a frozen copy of the module;
- any other callable: called as it is on every batch.
"""

from __future__ import annotations

import copy
import inspect
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import _distributed as distributed
from ._checkpoints import holding
from ._compat import import_torchvision
from ._networks import (
    Features,
    build_network,
    check_output,
    check_torchvision_name,
    split_head,
    to_rgb,
)
from ._reporting import Reporter
from ._targets import ClassIds, Rotations, Targets
from ._training import TrainConfig, infer, train

TRAINED_EXTRACTORS = ("rotnet", "supervised", "random")
# ImageNet networks see small images upsampled to this many pixels a side.
PRETRAINED_MIN_SIDE = 64
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def fit_extractor(
    extractor,
    *,
    weights,
    source,
    labels,
    architecture,
    stats,
    rotations_per_image: int | None = None,
    config: TrainConfig,
    generator: torch.Generator,
    checkpoints=None,
    reporter: Reporter | None = None,
) -> tuple[nn.Module, int, list[dict]]:
    """Resolve ``extractor`` into a frozen embedding module on ``config.device``.

    Returns
    -------
    module : nn.Module
        Maps [0, 1]-scaled images to features (N, d).
    n_features : int
        d, the width of its features.
    history : list of dict
        Training history of a trained extractor, else empty.
    """
    history: list[dict] = []
    if isinstance(extractor, str) and extractor in TRAINED_EXTRACTORS:
        targets = _pretext(extractor, source, labels, rotations_per_image)
        # An untrained network's head is never used; it gets two outputs.
        n_outputs = 2 if targets is None else targets.n_outputs
        network = build_network(architecture, source.shape, n_outputs, *stats)
        if targets is not None:
            history = train(
                network,
                source,
                targets,
                config=config,
                generator=generator,
                stage=extractor,
                checkpoints=checkpoints,
                reporter=reporter,
            )
        module: nn.Module = Features(network)
    elif isinstance(extractor, str):
        check_torchvision_name(
            extractor,
            "extractor",
            f"use one of {TRAINED_EXTRACTORS}, a torchvision model name, an nn.Module "
            f"or a callable",
        )
        state = _read_weights(_weights_file(extractor, weights))
        module = pretrained(extractor, source.shape[0], state)
    elif isinstance(extractor, nn.Module):
        module = copy.deepcopy(extractor)
    elif inspect.ismethod(extractor) and isinstance(extractor.__self__, nn.Module):
        module = _ModuleMethod(copy.deepcopy(extractor.__self__), extractor.__name__)
    else:
        module = _CallableExtractor(extractor)
    module.requires_grad_(False).eval().to(config.device)
    n_features = check_output(module, source.shape, "extractor", config.device)
    return module, n_features, history


def pretext_outputs(extractor, source, labels, rotations_per_image: int) -> int:
    """The number of outputs of a trained extractor's head (2 for the others)."""
    if not (isinstance(extractor, str) and extractor in TRAINED_EXTRACTORS):
        return 2
    targets = _pretext(extractor, source, labels, rotations_per_image)
    return 2 if targets is None else targets.n_outputs


def embed(
    extractor: nn.Module, source, *, batch_size: int, device, folder, cache, reporter=None
) -> np.ndarray:
    """N_pre's features of every image (see ``_training.infer``), or the ones ``cache`` stored.

    With a ``folder`` they go to a memory-mapped file there, and are not
    stored; under ``torch.distributed`` every rank embeds its block and rank 0
    gets them all.
    """
    stored = cache is not None and folder is None and not distributed.active()
    with holding(cache if stored else None, "embeddings"):
        saved = cache.load("embeddings") if stored else None
        if saved is not None:
            return saved["embeddings"].numpy()
        out_file = None if folder is None else folder / "embeddings.npy"
        embeddings = infer(
            extractor,
            source,
            batch_size=batch_size,
            device=device,
            shard=True,
            out_file=out_file,
            reporter=reporter,
        )
        if stored:
            cache.save("embeddings", {"embeddings": torch.from_numpy(embeddings)})
    return embeddings


def _pretext(extractor: str, source, labels, rotations_per_image) -> Targets | None:
    """What a trained extractor learns: rotations, the class ids ``labels``, or nothing."""
    if extractor == "rotnet":
        return Rotations(len(source), source.shape, rotations_per_image)
    if extractor == "supervised":
        return ClassIds(labels, accuracy_of="label")
    return None


class _ModuleMethod(nn.Module):
    """A method of a module (``network_.features``), with the module as a submodule.

    So that, unlike a plain callable, the module is copied, frozen, moved to
    the fit's device and pickled from the CPU like any other extractor.
    """

    def __init__(self, module: nn.Module, method: str):
        super().__init__()
        self.module = module
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.module, self.method)(x).flatten(1)


class _CallableExtractor(nn.Module):
    """A user's function, called on image batches, seen as a module."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.function(x)
        if not isinstance(out, torch.Tensor):
            out = torch.as_tensor(np.asarray(out, dtype=np.float32))
        return out.to(x.device, torch.float32).flatten(1) if out.ndim >= 2 else out


class _Pretrained(nn.Module):
    """An ImageNet network's pooled features for small grey or colour images."""

    def __init__(self, body: nn.Module, channels: int):
        super().__init__()
        self.to_rgb = to_rgb(channels)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.to_rgb(x[:, :3] if x.shape[1] == 4 else x)
        side = min(x.shape[2], x.shape[3])
        if side < PRETRAINED_MIN_SIDE:
            x = F.interpolate(
                x, scale_factor=PRETRAINED_MIN_SIDE / side, mode="bilinear", align_corners=False
            )
        return self.body((x - self.mean) / self.std).flatten(1)


def pretrained(name: str, channels: int, state: dict | None = None) -> nn.Module:
    """A torchvision model's pooled features, with the weights ``state`` if given.

    The weights are the full model's state dict, as torchvision saves them.
    """
    torchvision = import_torchvision()

    model = torchvision.models.get_model(name, weights=None)
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:  # missing, unexpected or other-shaped weights
            details = " ".join(str(exc).split())
            raise ValueError(
                f"The extractor_weights do not fit torchvision's {name!r}: {details[:500]}"
            ) from None
    body, _ = split_head(model, None, "extractor")
    return _Pretrained(body, 1 if channels == 1 else 3)


def _read_weights(path: Path) -> dict:
    """The state dict in ``path``, read without running code, or a ValueError saying why not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's advice on other files
            state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise  # no permission, a folder...: the system's own message says so
    except Exception:
        state = None  # not a file torch.save wrote, or one holding code
    if not isinstance(state, dict):
        raise ValueError(
            f"The extractor_weights file {str(path)!r} is not a state dict written by "
            f"torch.save(model.state_dict()); other files are refused, since reading "
            f"them could run code."
        )
    return state


def _weights_file(name: str, weights) -> Path:
    """The local file holding ``weights`` for torchvision model ``name``.

    ``weights`` is a path to a state-dict file, or the name of one of the
    model's torchvision weights (``None`` for its default), looked up in the
    torch cache (``$TORCH_HOME/hub/checkpoints``) where torchvision keeps them.
    """
    if weights is not None and (isinstance(weights, os.PathLike) or os.sep in str(weights)):
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"extractor_weights file {str(path)!r} does not exist.")
        return path
    available = import_torchvision().models.get_model_weights(name)
    key = "DEFAULT" if weights is None else str(weights)
    try:
        entry = available[key]
    except KeyError:
        names = [w.name for w in available]
        raise ValueError(
            f"extractor_weights={weights!r} is not a weights name of {name!r}; "
            f"use one of {names} or a path to a state-dict file."
        ) from None
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / os.path.basename(entry.url)
    if not path.is_file():
        raise FileNotFoundError(
            f"The weights {entry} of {name!r} are not on this machine: expected the "
            f"file {path.name!r} in the folder {str(folder)!r}. Copy the file there "
            f"(or set TORCH_HOME), or pass its path as extractor_weights. "
            f"Nothing is downloaded."
        )
    return path
