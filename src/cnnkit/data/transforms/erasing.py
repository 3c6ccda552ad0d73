"""RandomErasing on whole batches (Zhong et al., 2017; torchvision's ``RandomErasing``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cnnkit.data.transforms._random import sample_boxes, uniform
from cnnkit.data.transforms.base import Batch, Transform, check_images, pair
from cnnkit.errors import ConfigError, ShapeError


def box_mask(
    top: torch.Tensor,
    left: torch.Tensor,
    height: torch.Tensor,
    width: torch.Tensor,
    size: tuple[int, int],
) -> torch.Tensor:
    """(N, 1, H, W) bool mask: True in each box [top, top + height) x [left, left + width)."""
    rows = torch.arange(size[0], device=top.device)
    cols = torch.arange(size[1], device=top.device)
    inside_rows = (rows[None] >= top[:, None]) & (rows[None] < (top + height)[:, None])
    inside_cols = (cols[None] >= left[:, None]) & (cols[None] < (left + width)[:, None])
    return (inside_rows[:, :, None] & inside_cols[:, None, :])[:, None]


class RandomErasing(Transform):
    """With probability ``p`` per sample, overwrite a random rectangle.

    The rectangle's area is ``U(scale)`` of the image and its aspect ratio (h/w, torchvision's
    convention for erasing) ``exp(U(log ratio))``; of 10 candidates the first strictly smaller
    than the image is used, and a sample with none is left unchanged (torchvision's rule).

    Args:
        p: probability that a sample is erased.
        scale: range of the erased fraction of the area.
        ratio: range of the rectangle's aspect ratio.
        value: a number, one number per channel, or ``"random"``: uniform noise in [0, 1]
            (the loader's transforms see images in [0, 1], before normalisation).
    """

    def __init__(
        self,
        p: float = 0.5,
        scale: Sequence[float] = (0.02, 0.33),
        ratio: Sequence[float] = (0.3, 3.3),
        value: float | Sequence[float] | str = 0.0,
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"RandomErasing: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.scale = pair(scale, "RandomErasing scale")
        self.ratio = pair(ratio, "RandomErasing ratio")
        if not 0 < self.scale[0] <= self.scale[1] <= 1 or self.ratio[0] <= 0:
            raise ConfigError(
                f"RandomErasing: need 0 < scale <= 1 and ratio > 0, got {scale}, {ratio}"
            )
        if isinstance(value, str) and value != "random":
            raise ConfigError(
                f"RandomErasing: value must be a number, a tuple or 'random', got {value!r}"
            )
        self.value = (
            value
            if isinstance(value, str)
            else (
                (float(value),)
                if isinstance(value, (int, float))
                else tuple(float(v) for v in value)
            )
        )

    def boxes(
        self,
        count: int,
        height: int,
        width: int,
        generator: torch.Generator | None,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(top, left, box_height, box_width, erase) per sample; ``erase`` folds in ``p``."""
        # sample_boxes draws w/h = ratio; erasing's ratio is h/w, so the sides swap roles
        top, left, box_width, box_height, found = sample_boxes(
            count, width, height, self.scale, self.ratio, generator, device, strict=True
        )
        top, left = left, top
        erase = found & (uniform((count,), 0.0, 1.0, generator, device) < self.p)
        return top, left, box_height, box_width, erase

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
    ) -> Batch:
        check_images(images, "RandomErasing")
        count, channels, height, width = images.shape
        top, left, box_height, box_width, erase = self.boxes(
            count, height, width, generator, images.device
        )
        mask = box_mask(top, left, box_height, box_width, (height, width)) & erase.view(-1, 1, 1, 1)
        if self.value == "random":
            fill = uniform(tuple(images.shape), 0.0, 1.0, generator, images.device).to(images.dtype)
        else:
            if len(self.value) not in (1, channels):
                raise ShapeError(f"RandomErasing: {len(self.value)} values for {channels} channels")
            fill = torch.tensor(self.value, dtype=images.dtype, device=images.device).view(
                1, -1, 1, 1
            )
        return torch.where(mask, fill, images), targets
