"""Batched augmentation with torchvision's names, applied to whole (N, C, H, W) float batches (D2).

``transform(images, targets, generator) -> (images, targets)``; see :mod:`.base` for the
contract. Every random choice is made per sample, with tensor ops, from the generator.
"""

from __future__ import annotations

from cnnkit.data.transforms.base import Compose, Normalize, RandomChoice, Transform
from cnnkit.data.transforms.color import ColorJitter, grayscale, hsv_to_rgb, rgb_to_hsv
from cnnkit.data.transforms.erasing import RandomErasing
from cnnkit.data.transforms.geometric import (
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomVerticalFlip,
)
from cnnkit.data.transforms.mix import CutMix, MixUp

__all__ = [
    "ColorJitter",
    "Compose",
    "CutMix",
    "MixUp",
    "Normalize",
    "RandomChoice",
    "RandomCrop",
    "RandomErasing",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomVerticalFlip",
    "Transform",
    "grayscale",
    "hsv_to_rgb",
    "rgb_to_hsv",
]
