"""Network architectures, all split the same way: ``features(x)`` and ``head``.

Every network takes float32 images ``(N, C, H, W)`` scaled to ``[0, 1]``,
standardises them per channel, and maps them to pooled features with
``features``; ``head`` is the final linear layer on top. Whatever the
architecture (built-in, torchvision, or a user's factory), the split is made the
same way: the last ``nn.Linear`` of the module becomes ``head`` and is replaced
by the identity, so ``features`` returns exactly what the head sees. A network
trained on several clusterings has several linear heads on those features,
held by one :class:`Heads` module whose output is their logits side by side.
"""

from __future__ import annotations

import itertools
import threading
from numbers import Integral

import torch
from torch import nn

from ._compat import import_torchvision

BUILTIN_ARCHITECTURES = ("auto", "cnn", "cnn_stem", "resnet18_small")
# "cnn_stem" brings large images down by a whole factor to at least this many
# pixels a side (fewer than twice as many) first (benchmarks/bench_large_images.py).
STEM_SIDE = 24
# On the CPU, "auto" builds "cnn_stem" for images at least this large.
STEM_FROM = 64
_CNN_WIDTHS = (32, 64, 128, 256)
_STEM_WIDTH = 16


class Network(nn.Module):
    """A body giving pooled features and a linear head on top of it.

    Parameters
    ----------
    body : nn.Module
        Maps standardised images to features of shape (N, n_features).
    head : nn.Linear or Heads
        Maps features to outputs.
    mean, std : array-like of shape (C,)
        Per-channel statistics of the [0, 1]-scaled training images.
    """

    def __init__(self, body: nn.Module, head: nn.Module, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.body = body
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features of images scaled to [0, 1]."""
        return self.body((x - self.mean) / self.std).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Heads(nn.Module):
    """Several linear heads on the same features, their logits side by side.

    Each head is an ``nn.Linear`` of its own (``heads[i]``); the output is
    their logits concatenated in order, ``out_features`` wide.

    Parameters
    ----------
    linear : nn.Linear
        A head with as many outputs as all the heads together: its rows are
        shared out between them in order (so each starts as a freshly
        initialised ``nn.Linear`` would).
    sizes : sequence of int
        Outputs of each head.
    """

    def __init__(self, linear: nn.Linear, sizes):
        super().__init__()
        self.sizes = [int(size) for size in sizes]
        if sum(self.sizes) != linear.out_features:
            raise ValueError(
                f"Heads of {self.sizes} outputs need a linear layer of {sum(self.sizes)} "
                f"outputs; it has {linear.out_features}."
            )
        has_bias = linear.bias is not None
        weights = linear.weight.detach().split(self.sizes)
        biases = linear.bias.detach().split(self.sizes) if has_bias else [None] * len(self.sizes)
        self.heads = nn.ModuleList()
        for weight, bias in zip(weights, biases, strict=True):
            head = nn.Linear(linear.in_features, len(weight), bias=has_bias)
            with torch.no_grad():
                head.weight.copy_(weight)
                if has_bias:
                    head.bias.copy_(bias)
            self.heads.append(head.to(linear.weight.device))

    @property
    def in_features(self) -> int:
        return self.heads[0].in_features

    @property
    def out_features(self) -> int:
        return sum(self.sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(x) for head in self.heads], dim=1)


class Features(nn.Module):
    """The ``features`` of a :class:`Network` as a module of its own."""

    def __init__(self, network: Network):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.features(x)


class SideBySide(nn.Module):
    """The outputs of several feature modules on the same images, concatenated in order."""

    def __init__(self, modules):
        super().__init__()
        self.parts = nn.ModuleList(modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x) for part in self.parts], dim=1)


class MultiScale(nn.Module):
    """A features module's output with the pooled outputs of earlier stages before it.

    A stage is a stretch of the network at one spatial size; its output is
    what the last layer of that stretch returns, averaged over space. The
    output is ``[stage s-k+1, ..., stage s-1, module output]`` for
    ``stages=k``: the module's own output stands for the last stage, whose
    pooled output it is (or, as in the compact CNN, nearly is). The stages
    are found by running the module once on two blank images, so any network
    made of ``nn.Module`` layers works, built-in, torchvision or a user's.

    Parameters
    ----------
    module : nn.Module
        Maps images (N, C, H, W) to features (N, d).
    image_shape : tuple of int
        (C, H, W) of the images.
    stages : int
        How many stages at most, counting the last (a network with fewer gives
        all it has); 1 returns the module's output.
    """

    def __init__(self, module: nn.Module, image_shape, stages: int):
        super().__init__()
        self.module = module
        self.taps: list = []
        if stages > 1:
            found = stage_outputs(module, image_shape)
            self.taps = found[max(len(found) - (stages - 1), 0) :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.taps:
            return self.module(x).flatten(1)
        wanted = dict.fromkeys(self.taps)
        calls: dict = {}
        # The hooks live for one call only, so the network itself never keeps
        # them (it is pickled and saved without them), and record for this
        # thread alone: other threads may run the same network meanwhile.
        handles = [
            self.module.get_submodule(name).register_forward_hook(
                _this_thread(_tap(name, calls, wanted))
            )
            for name in {name for name, _ in self.taps}
        ]
        try:
            final = self.module(x).flatten(1)
        finally:
            for handle in handles:
                handle.remove()
        return torch.cat([*wanted.values(), final.float()], dim=1)


def _this_thread(hook):
    """``hook`` called only in the thread that makes it; other threads' calls pass by.

    A forward hook is registered on the module itself, which every thread
    running that module shares, so a hook that records must tell its own
    thread's calls from theirs.
    """
    owner = threading.get_ident()

    def in_owner(module, inputs, output):
        if threading.get_ident() == owner:
            hook(module, inputs, output)

    return in_owner


def _tap(name: str, calls: dict, wanted: dict):
    """Forward hook keeping the spatial mean of the wanted calls of layer ``name``."""

    def hook(module, inputs, output):
        call = (name, calls.get(name, 0))
        calls[name] = call[1] + 1
        if call in wanted:
            # Pooled at once: a later in-place layer may overwrite ``output``.
            wanted[call] = output.float().mean(dim=(2, 3))

    return hook


def stage_outputs(module: nn.Module, image_shape) -> list[tuple[str, int]]:
    """``(layer name, call number)`` of the last layer call of each stage but the last.

    Layers are the modules without children, in the order they run on two
    blank images; a stage is a run of consecutive calls returning feature maps
    of one spatial size. 1x1 maps between larger ones (squeeze-and-excitation
    gates) belong to no stage; 1x1 maps at the end are a stage only if a layer
    with weights computes there (the compact CNN on small images), otherwise
    they are the global pooling. The last stage is what the module's own
    output pools, so it is left out.
    """
    calls: list = []
    count: dict = {}

    def record(name):
        def hook(layer, inputs, output):
            number = count.get(name, 0)
            count[name] = number + 1
            if isinstance(output, torch.Tensor) and output.ndim == 4:
                weighted = any(True for _ in layer.parameters())
                calls.append((name, number, tuple(output.shape[2:]), weighted))

        return hook

    handles = [
        layer.register_forward_hook(_this_thread(record(name)))
        for name, layer in module.named_modules()
        if not any(True for _ in layer.children())
    ]
    try:
        run_blank(module, image_shape)
    finally:
        for handle in handles:
            handle.remove()
    last_larger = max((i for i, c in enumerate(calls) if c[2] != (1, 1)), default=-1)
    tail = calls[last_larger + 1 :]
    maps = [c for c in calls[: last_larger + 1] if c[2] != (1, 1)]
    if any(weighted for *_, weighted in tail):
        maps += tail
    ends = [
        (name, number)
        for i, (name, number, size, _) in enumerate(maps)
        if i + 1 == len(maps) or maps[i + 1][2] != size
    ]
    return ends[:-1]


def resolve_architecture(architecture, image_shape, device: torch.device):
    """What ``architecture="auto"`` builds; other values are returned unchanged.

    On a CUDA GPU, ``"resnet18_small"`` for images with a height or a width of
    32 pixels or more. Elsewhere the compact CNN: ``"cnn"``, or ``"cnn_stem"``
    for images whose height and width are both 64 pixels or more, whose cost
    would otherwise grow with the square of the image side
    (``benchmarks/bench_large_images.py``). On the CPU the compact CNN trained
    many times faster than ResNet-18 on 32x32 colour images and gave better
    features at the same number of epochs (``benchmarks/bench_colour.py``).
    """
    if architecture != "auto":
        return architecture
    _, height, width = image_shape
    if device.type == "cuda":
        return "resnet18_small" if max(height, width) >= 32 else "cnn"
    return "cnn_stem" if min(height, width) >= STEM_FROM else "cnn"


def build_network(architecture, image_shape, n_outputs, mean, std) -> Network:
    """Build a new, randomly initialised network.

    Parameters
    ----------
    architecture : str or callable
        ``"cnn"``, ``"resnet18_small"``, a torchvision model name, or a factory
        ``f(n_outputs) -> nn.Module`` whose last ``nn.Linear`` produces the
        ``n_outputs`` outputs (``"auto"`` is resolved first, see
        :func:`resolve_architecture`).
    image_shape : tuple of int
        (C, H, W).
    n_outputs : int or list of int
        Number of outputs of the head; a list of several gives the network
        one linear head per entry (:class:`Heads`), built as one head of all
        their outputs (the factory is called with their sum) whose rows are
        then shared out. A list of one is an int.
    mean, std : array-like of shape (C,)
        Input statistics, see :class:`Network`.
    """
    sizes = [int(n_outputs)] if isinstance(n_outputs, Integral) else [int(n) for n in n_outputs]
    n_outputs = sum(sizes)
    channels, height, width = image_shape
    if architecture in ("cnn", "cnn_stem"):
        module = _compact_cnn(channels, height, width, n_outputs, stem=architecture == "cnn_stem")
    elif architecture == "resnet18_small":
        module = _small_resnet18(channels, n_outputs)
    elif isinstance(architecture, str):
        module = _torchvision_model(architecture, channels, n_outputs)
    else:
        module = architecture(n_outputs)
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"The architecture factory must return an nn.Module; it returned "
                f"{type(module).__name__}."
            )
    body, head = split_head(module, n_outputs, "architecture")
    if len(sizes) > 1:
        head = Heads(head, sizes)
    network = Network(body, head, mean, std)
    check_output(Features(network), image_shape, "architecture", torch.device("cpu"))
    return network


def split_head(module: nn.Module, n_outputs: int | None, what: str):
    """Detach the last ``nn.Linear`` of ``module``: returns ``(body, head)``."""
    linears = [name for name, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"The {what} network has no nn.Linear layer to use as its head.")
    name = linears[-1]
    head = module.get_submodule(name)
    if n_outputs is not None and head.out_features != n_outputs:
        raise ValueError(
            f"The last nn.Linear of the {what} network has {head.out_features} "
            f"outputs; expected {n_outputs}."
        )
    parent_name, _, child = name.rpartition(".")
    setattr(module.get_submodule(parent_name), child, nn.Identity())
    return module, head


def run_blank(module: nn.Module, image_shape, device: torch.device | None = None):
    """``module``'s output in eval mode on two blank images, on ``device`` (None: its own)."""
    if device is None:
        tensors = itertools.chain(module.parameters(), module.buffers())
        device = next(tensors, torch.zeros(0)).device
    # Each layer gets back its own mode, not the module's: a new wrapper (in
    # training mode) around a fitted network must leave the network in eval
    # mode, which other threads may be running it in.
    training = [layer for layer in module.modules() if layer.training]
    module.eval()
    try:
        with torch.no_grad():
            return module(torch.zeros((2, *image_shape), device=device))
    finally:
        for layer in training:
            layer.training = True


def check_output(
    module: nn.Module, image_shape, what: str, device: torch.device | None = None
) -> int:
    """Run ``module`` on two blank images (see :func:`run_blank`); its feature count, or raise."""
    out = run_blank(module, image_shape, device)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if hasattr(out, "shape") else type(out).__name__
        raise ValueError(
            f"The {what} must map a batch of N images to features of shape "
            f"(N, n_features); for N=2 it returned {shape}."
        )
    return out.shape[1]


def _compact_cnn(
    channels: int, height: int, width: int, n_outputs: int, stem: bool = False
) -> nn.Module:
    """Four conv-BN-ReLU blocks, each halving the image while it is large enough.

    With ``stem``, a strided convolution first brings the image down by a
    whole factor to about ``STEM_SIDE`` pixels on its shorter side, each of its
    ``_STEM_WIDTH`` channels computed from one non-overlapping patch (a
    learned downsampling: average pooling is one of the filters it can learn).
    """
    layers: list[nn.Module] = []
    in_channels = channels
    if stem:
        factor = max(1, min(height, width) // STEM_SIDE)
        layers += [
            nn.Conv2d(channels, _STEM_WIDTH, factor, stride=factor, bias=False),
            nn.BatchNorm2d(_STEM_WIDTH),
            nn.ReLU(inplace=True),
        ]
        in_channels, height, width = _STEM_WIDTH, height // factor, width // factor
    for out_channels in _CNN_WIDTHS:
        layers += [
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
        pool = (2 if height >= 2 else 1, 2 if width >= 2 else 1)
        if pool != (1, 1):
            layers.append(nn.MaxPool2d(pool))
            height, width = height // pool[0], width // pool[1]
        in_channels = out_channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, n_outputs)]
    return nn.Sequential(*layers)


def _small_resnet18(channels: int, n_outputs: int) -> nn.Module:
    """ResNet-18 with a 3x3 stride-1 stem and no max-pool, for small images."""
    model = import_torchvision().models.resnet18(weights=None, num_classes=n_outputs)
    model.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def _torchvision_model(name: str, channels: int, n_outputs: int) -> nn.Module:
    """A torchvision classifier by name, untrained, adapted to ``channels``."""
    torchvision = import_torchvision()

    check_torchvision_name(
        name,
        "architecture",
        f"use one of {BUILTIN_ARCHITECTURES}, a torchvision model name, or a factory "
        f"f(n_outputs) -> nn.Module",
    )
    model = torchvision.models.get_model(name, weights=None, num_classes=n_outputs)
    return nn.Sequential(to_rgb(channels), model)


def check_torchvision_name(name: str, parameter: str, alternatives: str) -> None:
    """Raise ``ValueError`` naming ``parameter`` unless torchvision has a model ``name``."""
    torchvision = import_torchvision()

    if name not in torchvision.models.list_models():
        raise ValueError(f"Unknown {parameter} {name!r}: {alternatives}.")


def to_rgb(channels: int) -> nn.Module:
    """Module turning ``channels``-channel images into the 3 channels ImageNet nets take."""
    if channels == 3:
        return nn.Identity()
    if channels == 1:
        return _RepeatChannels()
    return nn.Conv2d(channels, 3, 1)


class _RepeatChannels(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1)
