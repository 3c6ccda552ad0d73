"""Geometric transforms on whole batches: crop with padding, flips, rotation, resized crop.

Each sample draws its own offsets, flip decision, angle or box from the generator; the batch is
then moved with one gather or one ``grid_sample`` call (no loop over samples).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cnnkit.data.transforms._random import integers_below, sample_boxes, uniform
from cnnkit.data.transforms.base import Batch, Transform, check_images, pair
from cnnkit.errors import ConfigError, ShapeError

# torchvision's padding_mode names -> torch.nn.functional.pad modes
PADDING_MODES = {"constant": "constant", "edge": "replicate", "reflect": "reflect"}


def _size(size: int | Sequence[int], name: str) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if height <= 0 or width <= 0:
        raise ConfigError(f"{name}: size must be positive, got {size!r}")
    return int(height), int(width)


def _padding(padding: int | Sequence[int] | None) -> tuple[int, int, int, int]:
    """torchvision's padding: int, (left/right, top/bottom) or (left, top, right, bottom)."""
    if padding is None:
        return (0, 0, 0, 0)
    values = [padding] if isinstance(padding, int) else list(padding)
    if len(values) == 1:
        values = values * 4
    elif len(values) == 2:
        values = [values[0], values[1], values[0], values[1]]
    if len(values) != 4 or any(v < 0 for v in values):
        raise ConfigError(f"RandomCrop: padding must be 1, 2 or 4 non-negative ints, got {padding}")
    return tuple(int(v) for v in values)  # type: ignore[return-value]  # the caller checked the number of values


def crop_batch(
    images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Per-sample crops ``images[i, :, top[i]:top[i]+height, left[i]:left[i]+width]``.

    One ``torch.gather`` on the flattened pixels (2-3x faster than advanced indexing here).
    """
    count, channels, in_height, in_width = images.shape
    rows = top[:, None] + torch.arange(height, device=images.device)  # (N, height)
    cols = left[:, None] + torch.arange(width, device=images.device)  # (N, width)
    flat = (rows[:, :, None] * in_width + cols[:, None, :]).reshape(count, 1, height * width)
    pixels = images.reshape(count, channels, in_height * in_width)
    return pixels.gather(2, flat.expand(count, channels, height * width)).view(
        count, channels, height, width
    )


class RandomCrop(Transform):
    """Pad, then crop ``size`` at a per-sample random offset (torchvision's ``RandomCrop``).

    With ``size`` equal to the input size this is a random translation by at most ``padding``
    pixels (seed 003: ``RandomCrop(28, padding=4)`` on Fashion-MNIST).
    """

    def __init__(
        self,
        size: int | Sequence[int],
        padding: int | Sequence[int] | None = None,
        padding_mode: str = "constant",
        fill: float = 0.0,
    ) -> None:
        if padding_mode not in PADDING_MODES:
            raise ConfigError(
                f"RandomCrop: padding_mode {padding_mode!r} unsupported; "
                f"choose from {', '.join(PADDING_MODES)}"
            )
        self.size = _size(size, "RandomCrop")
        self.padding = _padding(padding)
        self.padding_mode = padding_mode
        self.fill = float(fill)

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
    ) -> Batch:
        check_images(images, "RandomCrop")
        left_pad, top_pad, right_pad, bottom_pad = self.padding
        if any(self.padding):
            mode = PADDING_MODES[self.padding_mode]
            value = self.fill if mode == "constant" else None
            images = F.pad(
                images, (left_pad, right_pad, top_pad, bottom_pad), mode=mode, value=value
            )
        height, width = self.size
        padded_height, padded_width = images.shape[-2:]
        if height > padded_height or width > padded_width:
            raise ShapeError(
                f"RandomCrop: size {height}x{width} exceeds the padded input "
                f"{padded_height}x{padded_width}"
            )
        count = images.shape[0]
        full = torch.ones(count, dtype=torch.long, device=images.device)
        top = integers_below(full * (padded_height - height + 1), generator)
        left = integers_below(full * (padded_width - width + 1), generator)
        return crop_batch(images, top, left, height, width), targets


class RandomHorizontalFlip(Transform):
    """Mirror each sample left-right with probability ``p``."""

    dims = (-1,)

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
    ) -> Batch:
        check_images(images, type(self).__name__)
        flip = uniform((images.shape[0],), 0.0, 1.0, generator, images.device) < self.p
        return torch.where(flip[:, None, None, None], images.flip(self.dims), images), targets


class RandomVerticalFlip(RandomHorizontalFlip):
    """Mirror each sample top-bottom with probability ``p``."""

    dims = (-2,)


def _sample_grid(
    images: torch.Tensor, grid: torch.Tensor, mode: str, fill: float, padding_mode: str
) -> torch.Tensor:
    out = F.grid_sample(images, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
    if fill != 0.0 and padding_mode == "zeros":
        ones = torch.ones_like(images[:, :1])
        inside = F.grid_sample(ones, grid, mode=mode, padding_mode="zeros", align_corners=False)
        out = out + (1.0 - inside) * fill
    return out


class RandomRotation(Transform):
    """Rotate each sample by its own angle in ``degrees`` about the image centre.

    Positive angles turn counter-clockwise (torchvision's convention). Output pixel ``p'``
    (centred pixel coordinates, y down) samples the input at ``[[cos, -sin], [sin, cos]] p'``;
    in ``affine_grid``'s normalised coordinates the off-diagonal terms are scaled by the aspect
    ratio. Corners outside the input get ``fill``.

    Args:
        degrees: ``d`` for angles in [-d, d], or a (low, high) pair.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        fill: value of pixels that come from outside the input.
    """

    def __init__(
        self, degrees: float | Sequence[float], interpolation: str = "bilinear", fill: float = 0.0
    ) -> None:
        if isinstance(degrees, (int, float)):
            if degrees < 0:
                raise ConfigError(f"RandomRotation: degrees must be >= 0, got {degrees}")
            degrees = (-float(degrees), float(degrees))
        self.degrees = pair(degrees, "RandomRotation degrees")
        if interpolation not in ("bilinear", "nearest"):
            raise ConfigError(f"RandomRotation: interpolation {interpolation!r} unsupported")
        self.interpolation = interpolation
        self.fill = float(fill)

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
    ) -> Batch:
        check_images(images, "RandomRotation")
        count, _, height, width = images.shape
        degrees = uniform((count,), *self.degrees, generator, images.device).double()
        radians = degrees * (math.pi / 180.0)
        cos, sin = torch.cos(radians), torch.sin(radians)
        theta = torch.zeros(count, 2, 3, dtype=torch.float64, device=images.device)
        theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * (height / width)
        theta[:, 1, 0], theta[:, 1, 1] = sin * (width / height), cos
        grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
        return _sample_grid(images, grid, self.interpolation, self.fill, "zeros"), targets


class RandomResizedCrop(Transform):
    """Crop a random box and resize it to ``size`` (torchvision's ``RandomResizedCrop``).

    The box's area is ``U(scale)`` of the image and its aspect ratio (w/h) ``exp(U(log ratio))``;
    10 candidates per sample, the first that fits is used, else a centre crop with the ratio
    clamped to ``ratio`` (torchvision's fallback). Resizing is bilinear (``grid_sample``,
    ``align_corners=False``, border clamping: the same sampling as ``F.interpolate`` bilinear,
    without antialiasing).
    """

    def __init__(
        self,
        size: int | Sequence[int],
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
        interpolation: str = "bilinear",
    ) -> None:
        self.size = _size(size, "RandomResizedCrop")
        self.scale = pair(scale, "RandomResizedCrop scale")
        self.ratio = pair(ratio, "RandomResizedCrop ratio")
        if self.scale[0] <= 0 or self.ratio[0] <= 0:
            raise ConfigError("RandomResizedCrop: scale and ratio must be positive")
        if interpolation not in ("bilinear", "nearest"):
            raise ConfigError(f"RandomResizedCrop: interpolation {interpolation!r} unsupported")
        self.interpolation = interpolation

    def boxes(
        self,
        count: int,
        height: int,
        width: int,
        generator: torch.Generator | None,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(top, left, box_height, box_width) per sample, integer pixels inside the image."""
        top, left, box_height, box_width, found = sample_boxes(
            count, height, width, self.scale, self.ratio, generator, device
        )
        # fallback: the largest centred box whose ratio is clamped into `ratio`
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            fb_width, fb_height = width, round(width / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            fb_height, fb_width = height, round(height * self.ratio[1])
        else:
            fb_height, fb_width = height, width
        box_height = torch.where(found, box_height, fb_height)
        box_width = torch.where(found, box_width, fb_width)
        top = torch.where(found, top, (height - fb_height) // 2)
        left = torch.where(found, left, (width - fb_width) // 2)
        return top, left, box_height, box_width

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
    ) -> Batch:
        check_images(images, "RandomResizedCrop")
        count, _, height, width = images.shape
        top, left, box_height, box_width = self.boxes(
            count, height, width, generator, images.device
        )
        out_height, out_width = self.size
        device, dtype = images.device, torch.float64
        # output pixel j samples input pixel coordinate left + (j + 0.5) * box / out - 0.5
        cols = (torch.arange(out_width, device=device, dtype=dtype) + 0.5) / out_width
        rows = (torch.arange(out_height, device=device, dtype=dtype) + 0.5) / out_height
        x = left[:, None].to(dtype) + cols[None] * box_width[:, None].to(dtype) - 0.5
        y = top[:, None].to(dtype) + rows[None] * box_height[:, None].to(dtype) - 0.5
        grid_x = ((2 * x + 1) / width - 1)[:, None, :].expand(count, out_height, out_width)
        grid_y = ((2 * y + 1) / height - 1)[:, :, None].expand(count, out_height, out_width)
        grid = torch.stack((grid_x, grid_y), dim=-1).to(images.dtype)
        return _sample_grid(images, grid, self.interpolation, 0.0, "border"), targets
