"""Colour transforms on whole batches: ColorJitter and the RGB <-> HSV conversions it needs.

Images are floats in [0, 1]. Greyscale is ITU-R 601-2 luma with torchvision's weights
(0.2989 R + 0.587 G + 0.114 B); HSV follows Python's ``colorsys`` (hue in [0, 1)).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cnnkit.data.transforms._random import permutation, uniform
from cnnkit.data.transforms.base import Batch, Transform, check_images, pair
from cnnkit.errors import ConfigError, ShapeError

LUMA_WEIGHTS = (0.2989, 0.587, 0.114)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) luma of (N, 3, H, W) RGB images; a 1-channel batch is returned as is."""
    if images.shape[1] == 1:
        return images
    weights = torch.tensor(LUMA_WEIGHTS, dtype=images.dtype, device=images.device)
    return (images * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)


def rgb_to_hsv(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> HSV, all three in [0, 1] (``colorsys.rgb_to_hsv``)."""
    red, green, blue = images.unbind(dim=1)
    value, _ = images.max(dim=1)
    minimum, _ = images.min(dim=1)
    delta = value - minimum
    saturation = torch.where(value > 0, delta / torch.where(value > 0, value, 1.0), 0.0)
    safe = torch.where(delta > 0, delta, 1.0)
    # colorsys's branch order: red is max, then green, then blue
    hue = torch.where(
        value == red,
        (green - blue) / safe,
        torch.where(value == green, 2.0 + (blue - red) / safe, 4.0 + (red - green) / safe),
    )
    hue = torch.where(delta > 0, torch.remainder(hue / 6.0, 1.0), 0.0)
    return torch.stack((hue, saturation, value), dim=1)


def hsv_to_rgb(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) HSV in [0, 1] -> RGB (``colorsys.hsv_to_rgb``)."""
    hue, saturation, value = images.unbind(dim=1)
    sector_float = torch.floor(hue * 6.0)
    fraction = hue * 6.0 - sector_float
    sector = sector_float.long() % 6
    p = value * (1.0 - saturation)
    q = value * (1.0 - saturation * fraction)
    t = value * (1.0 - saturation * (1.0 - fraction))
    # sectors 0..5 give (red, green, blue) = (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q)
    table = torch.stack(
        (
            torch.stack((value, q, p, p, t, value)),  # red in each sector
            torch.stack((t, value, value, q, p, p)),  # green
            torch.stack((p, p, t, value, value, q)),  # blue
        )
    )  # (3, 6, N, H, W)
    index = sector.expand(3, 1, *hue.shape)
    return table.gather(1, index).squeeze(1).movedim(0, 1)


def _factor_range(
    value: float | Sequence[float], name: str, center: float, bound: tuple[float, float]
) -> tuple[float, float] | None:
    """torchvision's convention: x -> [center - x, center + x] (clamped to ``bound``), or a pair."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ConfigError(f"ColorJitter: {name} must be non-negative, got {value}")
        if value == 0:
            return None
        low, high = center - float(value), center + float(value)
        low = max(low, bound[0])
    else:
        low, high = pair(value, f"ColorJitter {name}")
    if low < bound[0] or high > bound[1]:
        raise ConfigError(f"ColorJitter: {name} range ({low}, {high}) outside {bound}")
    if low == high == center:
        return None
    return low, high


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``factor * images + (1 - factor) * other``, clamped to [0, 1] (torchvision's ``_blend``)."""
    factor = factor.view(-1, 1, 1, 1)
    return (factor * images + (1.0 - factor) * other).clamp(0.0, 1.0)


class ColorJitter(Transform):
    """Random brightness, contrast, saturation and hue, with factors drawn per sample.

    - brightness b: ``clamp(b * x)``; contrast c: blend with the image's mean luma;
      saturation s: blend with the luma image; hue h: add h to the HSV hue (mod 1).
    - A float ``x`` means factors in ``[max(0, 1 - x), 1 + x]`` (hue: ``[-x, x]``, x <= 0.5);
      a pair gives the range. Applied in a random order drawn once per batch (torchvision draws
      one order per call too).
    - Saturation and hue need 3-channel images; brightness and contrast work on any.
    """

    def __init__(
        self,
        brightness: float | Sequence[float] = 0.0,
        contrast: float | Sequence[float] = 0.0,
        saturation: float | Sequence[float] = 0.0,
        hue: float | Sequence[float] = 0.0,
    ) -> None:
        infinity = float("inf")
        self.brightness = _factor_range(brightness, "brightness", 1.0, (0.0, infinity))
        self.contrast = _factor_range(contrast, "contrast", 1.0, (0.0, infinity))
        self.saturation = _factor_range(saturation, "saturation", 1.0, (0.0, infinity))
        self.hue = _factor_range(hue, "hue", 0.0, (-0.5, 0.5))

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
    ) -> Batch:
        check_images(images, "ColorJitter")
        if (self.saturation or self.hue) and images.shape[1] != 3:
            raise ShapeError(
                f"ColorJitter: saturation and hue need 3-channel images, got {images.shape[1]}"
            )
        count, device = images.shape[0], images.device
        for step in permutation(4, generator, device).tolist():
            if step == 0 and self.brightness:
                factor = uniform((count,), *self.brightness, generator, device, images.dtype)
                images = (images * factor.view(-1, 1, 1, 1)).clamp(0.0, 1.0)
            elif step == 1 and self.contrast:
                factor = uniform((count,), *self.contrast, generator, device, images.dtype)
                mean = grayscale(images).mean(dim=(1, 2, 3), keepdim=True)
                images = _blend(images, mean, factor)
            elif step == 2 and self.saturation:
                factor = uniform((count,), *self.saturation, generator, device, images.dtype)
                images = _blend(images, grayscale(images), factor)
            elif step == 3 and self.hue:
                shift = uniform((count,), *self.hue, generator, device, images.dtype)
                hsv = rgb_to_hsv(images)
                hue = torch.remainder(hsv[:, 0] + shift.view(-1, 1, 1), 1.0)
                images = hsv_to_rgb(torch.stack((hue, hsv[:, 1], hsv[:, 2]), dim=1))
        return images, targets
