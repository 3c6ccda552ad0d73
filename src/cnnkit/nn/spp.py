"""Spatial pyramid pooling: a fixed-length vector from a map of any size (He et al., 2014; 001).

Each level ``l`` pools the map into an ``l x l`` grid of adaptive windows, so a ``(N, C, H, W)``
input of any ``H, W >= 1`` gives ``(N, C * sum(l^2))``; a classifier after it no longer fixes the
input size. Seed 001 uses average pooling with levels (1, 2, 4): ``256 * 21 = 5376`` features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import ConfigError, ShapeError


class SpatialPyramidPooling(nn.Module):
    """Pool to ``l x l`` for every level ``l`` and concatenate: output ``C * sum(l^2)`` features.

    Args:
        levels: grid sizes, e.g. ``(1, 2, 4)`` (001) or ``(1, 2, 3, 6)``.
        mode: ``"max"`` (the paper's choice) or ``"avg"`` (001's).

    The features are ordered level by level, then channel, then grid cell (row-major).
    """

    def __init__(self, levels: Sequence[int] = (1, 2, 4), mode: str = "max") -> None:
        super().__init__()
        levels = tuple(levels)
        if not levels or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in levels
        ):
            raise ConfigError(f"SpatialPyramidPooling: levels must be ints >= 1, got {levels!r}")
        if mode not in ("max", "avg"):
            raise ConfigError(f"SpatialPyramidPooling: mode must be 'max' or 'avg', got {mode!r}")
        self.levels = levels
        self.mode = mode

    def output_features(self, channels: int) -> int:
        """Length of the output vector for ``channels`` input channels: ``C * sum(l^2)``."""
        return channels * sum(level * level for level in self.levels)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, mode={self.mode!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ShapeError(
                f"SpatialPyramidPooling: expected an (N, C, H, W) input, got {tuple(x.shape)}"
            )
        pool = F.adaptive_max_pool2d if self.mode == "max" else F.adaptive_avg_pool2d
        return torch.cat([pool(x, level).flatten(1) for level in self.levels], dim=1)
