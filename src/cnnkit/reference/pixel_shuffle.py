"""Pixel shuffle (sub-pixel convolution's rearrangement) and its backward (002, B4).

``[N, C r^2, H, W] -> [N, C, H r, W r]`` with ``Y[n, c, h r + i, w r + j] = X[n, c r^2 + i r + j,
h, w]``: no zeros are inserted, so every output pixel is one input value (002). The backward is
the inverse rearrangement (pixel unshuffle), since the map is a permutation.
"""

from __future__ import annotations

import torch

from cnnkit.errors import ConfigError, ShapeError
from cnnkit.reference._checks import require_rank


def pixel_shuffle(x: torch.Tensor, upscale_factor: int) -> torch.Tensor:
    """``Y[n, c, h r + i, w r + j] = X[n, c r^2 + i r + j, h, w]`` (``torch.nn.PixelShuffle``)."""
    require_rank("pixel_shuffle", "input", x, 4, "(N, C r^2, H, W)")
    r = _factor(upscale_factor)
    n, channels, height, width = x.shape
    if channels % (r * r):
        raise ShapeError(
            f"pixel_shuffle: input channels ({channels}) are not divisible by "
            f"upscale_factor^2 ({r * r})"
        )
    blocks = x.reshape(n, channels // (r * r), r, r, height, width)  # [n, c, i, j, h, w]
    return blocks.permute(0, 1, 4, 2, 5, 3).reshape(n, channels // (r * r), height * r, width * r)


def pixel_shuffle_backward(grad_out: torch.Tensor, upscale_factor: int) -> torch.Tensor:
    """``dL/dX[n, c r^2 + i r + j, h, w] = G[n, c, h r + i, w r + j]``: pixel unshuffle."""
    require_rank("pixel_shuffle_backward", "grad_out", grad_out, 4, "(N, C, H r, W r)")
    r = _factor(upscale_factor)
    n, channels, height, width = grad_out.shape
    if height % r or width % r:
        raise ShapeError(
            f"pixel_shuffle_backward: grad_out size {height}x{width} is not divisible by "
            f"upscale_factor ({r})"
        )
    blocks = grad_out.reshape(n, channels, height // r, r, width // r, r)  # [n, c, h, i, w, j]
    return blocks.permute(0, 1, 3, 5, 2, 4).reshape(n, channels * r * r, height // r, width // r)


def _factor(upscale_factor: int) -> int:
    if (
        isinstance(upscale_factor, bool)
        or not isinstance(upscale_factor, int)
        or upscale_factor < 1
    ):
        raise ConfigError(f"upscale_factor must be a positive integer, got {upscale_factor!r}")
    return upscale_factor
