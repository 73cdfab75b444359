"""What a network is trained to predict: one small object per kind of supervision.

The training loop (``_training``) never asks what it trains for. It hands each
batch of augmented images to a targets object, which turns it into the
network's inputs and targets and later computes the loss and the count of
correct predictions:

- :class:`Rotations`: images at some or all of their quarter turns, the turn
  to predict (the RotNet pretext task);
- :class:`ClassIds`: one class id per image (labels, or ClusterFit's
  pseudo-labels), negative ids left out;
- :class:`ClassIdsPerHead`: a class id per image for each of several heads
  (ClusterFit on several clusterings), the loss summed over the heads;
- :class:`ClassProbabilities`: a probability per class and image (distilling
  another network's soft outputs).

Each object also tells which images may be trained on (``indices``), the
sampling weights of class-balanced sampling, and what its accuracy measures.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ._devices import to_device


class Targets:
    """What every kind of target shares: cross-entropy, argmax accuracy, uniform draws.

    A subclass sets ``indices`` (the images trained on), ``n_outputs`` and
    ``accuracy_of`` (what the accuracy measures, for the progress line), and
    defines ``batch(indices, images, generator) -> (inputs, targets)`` on the
    images' device (``generator``, on the CPU, for any random choice).
    """

    indices: np.ndarray
    accuracy_of: str

    def sampling_weights(self) -> torch.Tensor | None:
        """Per-image weights of class-balanced sampling; None draws uniformly."""
        return None

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the batch (targets are ids or probabilities)."""
        return F.cross_entropy(logits, targets)

    def n_correct(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Count of images whose highest logit is their target, kept on the device."""
        hard = targets if targets.ndim == 1 else targets.argmax(1)
        return (logits.argmax(1) == hard).sum()


class Rotations(Targets):
    """Images turned by quarter turns, with the index of each one's turn as its target.

    Square images are turned by 0, 90, 180 and 270 degrees; others (which a
    quarter turn would reshape) by 0 and 180 degrees.

    Parameters
    ----------
    n_samples : int
        Number of images, all used.
    image_shape : tuple of int
        (C, H, W) of the images.
    per_image : int or None
        How many of the turns each image is shown at in a step, drawn at
        random without repeats; None (or as many as there are turns) shows
        every image at every turn, as RotNet was first trained.
    """

    accuracy_of = "rotation"

    def __init__(self, n_samples: int, image_shape, per_image: int | None = None):
        self.indices = np.arange(n_samples)
        self.turns = (0, 1, 2, 3) if image_shape[1] == image_shape[2] else (0, 2)
        self.per_image = len(self.turns) if per_image is None else min(per_image, len(self.turns))

    @property
    def n_outputs(self) -> int:
        return len(self.turns)

    def batch(self, indices: np.ndarray, images: torch.Tensor, generator: torch.Generator):
        """The images at their turns, and the index of each one's turn."""
        device = images.device
        if self.per_image == len(self.turns):
            rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in self.turns])
            targets = torch.arange(len(self.turns), device=device)
            return rotated, targets.repeat_interleave(len(images))
        # Each image's turns: the first per_image of a random order of the turns,
        # chosen on the CPU and sent to the device in one copy that no step waits for.
        draws = torch.rand((len(images), len(self.turns)), generator=generator)
        chosen = draws.argsort(dim=1)[:, : self.per_image]
        rows = [
            (chosen == index).any(dim=1).nonzero().flatten() for index in range(len(self.turns))
        ]
        counts = [len(r) for r in rows]
        turn_ids = torch.arange(len(self.turns)).repeat_interleave(torch.tensor(counts))
        rows_and_turns = to_device(torch.stack([torch.cat(rows), turn_ids]), device)
        rotated = [
            torch.rot90(images[r], k, dims=(2, 3))
            for r, k in zip(rows_and_turns[0].split(counts), self.turns, strict=True)
        ]
        return torch.cat(rotated), rows_and_turns[1]


class ClassIds(Targets):
    """One class id per image; images with a negative id are not trained on.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
        Class ids in ``[0, n_classes)``, or negative for images to leave out
        (those a clusterer left unassigned).
    accuracy_of : str
        What the accuracy measures, for the progress line ("pseudo-label",
        "label").
    """

    def __init__(self, labels: np.ndarray, accuracy_of: str = "label"):
        labels = np.asarray(labels)
        self.indices = np.flatnonzero(labels >= 0)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.accuracy_of = accuracy_of

    @property
    def n_outputs(self) -> int:
        return int(self.labels.max()) + 1

    def sampling_weights(self) -> torch.Tensor:
        """Weights making every class equally likely to be drawn (DeepCluster's sampler)."""
        return _balancing_weights(self.labels[self.indices].numpy())

    def batch(self, indices: np.ndarray, images: torch.Tensor, generator=None):
        return images, to_device(self.labels[indices], images.device)


class ClassIdsPerHead(ClassIds):
    """A class id per image for each of several heads, whose logits come side by side.

    The network's output is the logits of its heads concatenated in the order
    of ``labels`` (see ``_networks.Heads``). The loss is the sum of the heads'
    mean cross-entropies, so one backward pass trains them all; the accuracy
    counted is the first head's, and class-balanced sampling balances the
    first labelling's classes. Images with a negative id in any labelling are
    not trained on.

    Parameters
    ----------
    labels : sequence of ndarray of shape (n_samples,)
        One labelling per head: class ids in ``[0, n_classes)``, or negative
        for images to leave out.
    accuracy_of : str
        What the first head's accuracy measures, for the progress line.
    """

    def __init__(self, labels, accuracy_of: str = "label"):
        columns = [np.asarray(column) for column in labels]
        stacked = np.stack(columns, axis=1)
        self.indices = np.flatnonzero((stacked >= 0).all(axis=1))
        self.labels = torch.as_tensor(stacked, dtype=torch.long)
        self.sizes = [int(column.max()) + 1 for column in columns]
        self.accuracy_of = f"first head's {accuracy_of}"

    @property
    def n_outputs(self) -> int:
        return sum(self.sizes)

    def sampling_weights(self) -> torch.Tensor:
        """Weights making every class of the first labelling equally likely to be drawn."""
        return _balancing_weights(self.labels[self.indices, 0].numpy())

    # ``batch`` is ClassIds', giving the ids (N, n_heads), one column per head.

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Sum over the heads of each one's mean cross-entropy."""
        parts = logits.split(self.sizes, dim=1)
        return torch.stack(
            [F.cross_entropy(part, targets[:, head]) for head, part in enumerate(parts)]
        ).sum()

    def n_correct(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Count of images whose first head's highest logit is their first id."""
        return (logits[:, : self.sizes[0]].argmax(1) == targets[:, 0]).sum()


def class_ids(labels, accuracy_of: str = "label") -> Targets:
    """Targets of one labelling per head: ClassIds for one, ClassIdsPerHead for several."""
    if len(labels) == 1:
        return ClassIds(labels[0], accuracy_of=accuracy_of)
    return ClassIdsPerHead(labels, accuracy_of=accuracy_of)


def _balancing_weights(labels: np.ndarray) -> torch.Tensor:
    """Per-image weights ``1 / (size of its class)``: every class equally likely."""
    counts = np.bincount(labels)
    return torch.as_tensor(1.0 / counts[labels], dtype=torch.float64)


class ClassProbabilities(Targets):
    """A probability per class and image (soft targets, as in distillation).

    Parameters
    ----------
    probabilities : ndarray of shape (n_samples, n_classes)
        Rows summing to one.
    """

    accuracy_of = "most probable class"

    def __init__(self, probabilities: np.ndarray):
        self.probabilities = torch.as_tensor(probabilities, dtype=torch.float32)
        self.indices = np.arange(len(self.probabilities))

    @property
    def n_outputs(self) -> int:
        return self.probabilities.shape[1]

    def batch(self, indices: np.ndarray, images: torch.Tensor, generator=None):
        return images, to_device(self.probabilities[indices], images.device)
