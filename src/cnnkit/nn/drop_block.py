"""DropBlock: drop contiguous squares of a feature map (Ghiasi et al., 2018; seed 001).

Dropout removes single pixels, which neighbouring pixels of a conv feature map largely restore;
DropBlock removes ``block_size x block_size`` squares. Seed 001's version samples the mask with
the wrong probability (``bernoulli(1 - gamma)`` marks *kept* seeds, then inverts the max-pooled
mask) and pads even block sizes so the mask changes shape; this one follows the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import ConfigError, ShapeError


def drop_block_gamma(drop_prob: float, block_size: int, height: int, width: int) -> float:
    """Seed (block-centre) probability of DropBlock (Ghiasi et al., 2018, eq. 1).

    ``gamma = drop_prob / block_size^2 * (H W) / ((H - block_size + 1) (W - block_size + 1))``:
    seeds fall only where a whole block fits, and each drops ``block_size^2`` units, so that the
    dropped fraction is ``drop_prob`` when blocks do not overlap.
    """
    valid = (height - block_size + 1) * (width - block_size + 1)
    if valid < 1:
        raise ConfigError(f"DropBlock2d: block_size {block_size} exceeds the {height}x{width} map")
    return min(drop_prob * height * width / (block_size**2 * valid), 1.0)


class DropBlock2d(nn.Module):
    """DropBlock on ``(N, C, H, W)`` maps; the identity in eval mode or when ``drop_prob == 0``.

    Seeds are drawn with probability ``gamma`` (:func:`drop_block_gamma`) at positions where a
    block fits; each seed zeroes the ``block_size x block_size`` square below and right of it. A
    unit covered by ``m`` possible seeds survives with probability ``(1 - gamma)^m``, and kept
    units are divided by exactly that, so ``E[output] = input`` element by element. (The paper
    rescales by the batch's kept fraction instead, which is only approximately unbiased.)
    ``block_size`` is clipped to the map size. Masks are drawn per sample and channel.
    """

    def __init__(self, drop_prob: float = 0.1, block_size: int = 7) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ConfigError(f"DropBlock2d: drop_prob must be in [0, 1), got {drop_prob}")
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ConfigError(f"DropBlock2d: block_size must be an int >= 1, got {block_size!r}")
        self.drop_prob = drop_prob
        self.block_size = block_size

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}, block_size={self.block_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        if x.dim() != 4:
            raise ShapeError(f"DropBlock2d: expected an (N, C, H, W) input, got {tuple(x.shape)}")
        n, c, h, w = x.shape
        size = min(self.block_size, h, w)
        gamma = drop_block_gamma(self.drop_prob, size, h, w)
        seeds = torch.bernoulli(
            torch.full((n, c, h - size + 1, w - size + 1), gamma, dtype=x.dtype, device=x.device)
        )
        dropped = _cover(seeds, size)
        # how many seed positions can cover each unit: its survival probability is (1-gamma)^m
        coverage = _cover(torch.ones_like(seeds[:1, :1]), size, reduce="sum")
        keep_prob = (1.0 - gamma) ** coverage
        return x * (1.0 - dropped) / keep_prob


def _cover(seeds: torch.Tensor, size: int, reduce: str = "max") -> torch.Tensor:
    """Spread each seed over the ``size x size`` square below-right of it (full-size output).

    Unit ``(y, x)`` is covered by seeds ``(i, j)`` with ``y - size < i <= y``: pad ``size - 1``
    on every side and pool with a ``size`` window at stride 1.
    """
    padded = F.pad(seeds, (size - 1, size - 1, size - 1, size - 1))
    if reduce == "max":
        return F.max_pool2d(padded, size, stride=1)
    return torch.round(F.avg_pool2d(padded, size, stride=1) * (size * size))
