"""The transform protocol, composition, per-sample choice and normalisation.

A transform is called on a whole batch: ``transform(images, targets, generator)`` with images a
float (N, C, H, W) tensor (the loader's are in [0, 1]), targets (N,) int64 labels or (N, K)
class probabilities, and an optional ``torch.Generator``; it returns ``(images, targets)``.
Randomness is per sample, drawn from ``generator`` with tensor ops (no Python loop over the
batch). A transform whose ``mixes_labels`` is True returns (N, K) probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cnnkit.data.transforms._random import uniform
from cnnkit.errors import ConfigError, ShapeError

Batch = tuple[torch.Tensor, torch.Tensor]


class Transform:
    """Base class: subclasses implement ``__call__(images, targets, generator=None)``."""

    mixes_labels: bool = False

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
    ) -> Batch:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


def check_images(images: torch.Tensor, name: str) -> None:
    if images.dim() != 4 or not images.is_floating_point():
        raise ShapeError(
            f"{name}: expects a float (N, C, H, W) batch, got {images.dtype} "
            f"of shape {tuple(images.shape)}"
        )


def as_probabilities(targets: torch.Tensor, num_classes: int, name: str) -> torch.Tensor:
    """(N,) int labels -> (N, num_classes) one-hot floats; (N, K) probabilities pass through."""
    if targets.dim() == 1:
        if targets.numel() and int(targets.max()) >= num_classes:
            raise ConfigError(
                f"{name}: label {int(targets.max())} does not fit num_classes={num_classes}"
            )
        return torch.nn.functional.one_hot(targets.long(), num_classes).float()
    if targets.dim() != 2 or targets.shape[1] != num_classes:
        raise ShapeError(
            f"{name}: targets must be (N,) labels or (N, {num_classes}) probabilities, "
            f"got shape {tuple(targets.shape)}"
        )
    return targets.float()


def pair(value: float | Sequence[float], name: str) -> tuple[float, float]:
    """``(low, high)`` from a pair, checking ``low <= high``."""
    if isinstance(value, (int, float)):
        raise ConfigError(f"{name}: expected a (low, high) pair, got {value!r}")
    low, high = (float(v) for v in value)
    if low > high:
        raise ConfigError(f"{name}: low {low} exceeds high {high}")
    return low, high


class Compose(Transform):
    """Apply ``transforms`` in order (torchvision's ``Compose``, on whole batches)."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)
        self.mixes_labels = any(getattr(t, "mixes_labels", False) for t in self.transforms)

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
    ) -> Batch:
        for transform in self.transforms:
            images, targets = transform(images, targets, generator)
        return images, targets


class RandomChoice(Transform):
    """Each sample goes through one of ``transforms``, chosen per sample with probabilities ``p``.

    The typical use is CutMix-or-MixUp: ``RandomChoice([CutMix(1.0, 10), MixUp(0.2, 10)])``
    (timm and torchvision choose once per batch; here every sample draws its own choice). Each
    transform runs once, on the samples that chose it. When any choice mixes labels, all targets
    come out as (N, K) probabilities, so ``num_classes`` must be known from a mixing transform.
    """

    def __init__(self, transforms: Sequence[Transform], p: Sequence[float] | None = None) -> None:
        if not transforms:
            raise ConfigError("RandomChoice: needs at least one transform")
        weights = [1.0] * len(transforms) if p is None else [float(v) for v in p]
        if len(weights) != len(transforms) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(f"RandomChoice: p must be {len(transforms)} non-negative weights")
        self.transforms = list(transforms)
        self.p = [w / sum(weights) for w in weights]
        self.mixes_labels = any(getattr(t, "mixes_labels", False) for t in self.transforms)
        declared = (getattr(t, "num_classes", None) for t in self.transforms)
        classes = {n for n in declared if isinstance(n, int) and n > 0}  # 0: a choice, no mix
        if self.mixes_labels and len(classes) != 1:
            raise ConfigError("RandomChoice: the mixing transforms must agree on num_classes")
        # 0 when no choice mixes labels: targets then pass through as they came.
        self.num_classes: int = classes.pop() if classes else 0

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
    ) -> Batch:
        check_images(images, "RandomChoice")
        if self.mixes_labels:
            targets = as_probabilities(targets, self.num_classes, "RandomChoice")
        cumulative = torch.tensor(self.p, device=images.device).cumsum(0)
        draws = uniform((images.shape[0],), 0.0, 1.0, generator, images.device)
        choice = torch.searchsorted(cumulative, draws, right=True).clamp_max(len(self.p) - 1)
        out_images, out_targets = images.clone(), targets.clone()
        for index, transform in enumerate(self.transforms):  # a loop over choices, not samples
            chosen = torch.nonzero(choice == index).squeeze(1)
            if chosen.numel() == 0:
                continue
            part_images, part_targets = transform(images[chosen], targets[chosen], generator)
            if part_images.shape[1:] != images.shape[1:]:
                raise ShapeError(f"RandomChoice: {type(transform).__name__} changed the image size")
            if self.mixes_labels:
                part_targets = as_probabilities(part_targets, self.num_classes, "RandomChoice")
            out_images[chosen] = part_images
            out_targets[chosen] = part_targets.to(out_targets.dtype)
        return out_images, out_targets


class Normalize(Transform):
    """``(images - mean) / std`` per channel (torchvision's ``Normalize``).

    Use the dataset's computed statistics (:func:`cnnkit.data.channel_stats`), not typed ones.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        if len(self.mean) != len(self.std) or not self.mean:
            raise ConfigError(f"Normalize: mean {self.mean} and std {self.std} differ in length")
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"Normalize: every std must be positive, got {self.std}")

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
    ) -> Batch:
        check_images(images, "Normalize")
        if images.shape[1] != len(self.mean):
            raise ShapeError(
                f"Normalize: {len(self.mean)} channel statistics for {images.shape[1]} channels"
            )
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        return (images - mean) / std, targets
