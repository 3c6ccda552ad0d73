"""CutMix and MixUp on whole batches: images and labels mixed with a partner sample (001).

Each sample ``i`` draws its own ``lam_i ~ Beta(alpha, alpha)``, and a random permutation gives
its partner ``j = perm[i]`` (torchvision and timm draw one lambda per batch and pair by rolling the
batch; per-sample draws give every sample its own mix). Targets come out as (N, num_classes)
probabilities whose rows sum to 1.
"""

from __future__ import annotations

import math

import torch

from cnnkit.data.transforms._random import beta, integers_below, permutation
from cnnkit.data.transforms.base import Batch, Transform, as_probabilities, check_images
from cnnkit.data.transforms.erasing import box_mask
from cnnkit.errors import ConfigError


def _check(alpha: float, num_classes: int, name: str) -> None:
    if not alpha > 0 or math.isinf(alpha):
        raise ConfigError(f"{name}: alpha must be a positive number, got {alpha}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"{name}: num_classes must be a positive int, got {num_classes!r}")


class MixUp(Transform):
    """``x_i <- lam_i x_i + (1 - lam_i) x_j``, ``t_i <- lam_i t_i + (1 - lam_i) t_j``.

    Zhang et al. (2018), "mixup: Beyond Empirical Risk Minimization"; seed 001's recipe.
    """

    mixes_labels = True

    def __init__(self, alpha: float = 0.2, num_classes: int = 10) -> None:
        _check(alpha, num_classes, "MixUp")
        self.alpha, self.num_classes = float(alpha), num_classes

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
    ) -> Batch:
        check_images(images, "MixUp")
        targets = as_probabilities(targets, self.num_classes, "MixUp")
        count = images.shape[0]
        lam = beta(self.alpha, count, generator, images.device).to(images.dtype)
        partner = permutation(count, generator, images.device)
        mixed = lam.view(-1, 1, 1, 1) * images + (1 - lam.view(-1, 1, 1, 1)) * images[partner]
        weight = lam.view(-1, 1).to(targets.dtype)
        return mixed, weight * targets + (1 - weight) * targets[partner]


class CutMix(Transform):
    """Paste a box of the partner into each sample; the label weight is the area kept.

    Yun et al. (2019), "CutMix". The box has sides ``r H`` and ``r W`` with
    ``r = sqrt(1 - lam)``, centred at a uniformly random pixel and clipped to the image (as
    torchvision does), so the label weight uses the clipped area:
    ``lam_i = 1 - box_area_i / (H W)``.
    """

    mixes_labels = True

    def __init__(self, alpha: float = 1.0, num_classes: int = 10) -> None:
        _check(alpha, num_classes, "CutMix")
        self.alpha, self.num_classes = float(alpha), num_classes

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
    ) -> Batch:
        check_images(images, "CutMix")
        targets = as_probabilities(targets, self.num_classes, "CutMix")
        count, _, height, width = images.shape
        device = images.device
        lam = beta(self.alpha, count, generator, device).double()
        half = 0.5 * torch.sqrt(1.0 - lam)
        half_height, half_width = (half * height).long(), (half * width).long()
        center_y = integers_below(torch.full((count,), height, device=device), generator)
        center_x = integers_below(torch.full((count,), width, device=device), generator)
        top, bottom = (
            (center_y - half_height).clamp(0, height),
            (center_y + half_height).clamp(0, height),
        )
        left, right = (
            (center_x - half_width).clamp(0, width),
            (center_x + half_width).clamp(0, width),
        )
        partner = permutation(count, generator, device)
        mask = box_mask(top, left, bottom - top, right - left, (height, width))
        mixed = torch.where(mask, images[partner], images)
        kept = 1.0 - ((bottom - top) * (right - left)).to(torch.float64) / (height * width)
        weight = kept.view(-1, 1).to(targets.dtype)
        return mixed, weight * targets + (1 - weight) * targets[partner]
