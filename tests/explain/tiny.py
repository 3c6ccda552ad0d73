"""Tiny float64 models for the explain tests (fast, and small enough to write formulas out)."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """conv -> ReLU -> conv (the CAM target, ``features.2``) -> in-place ReLU -> linear head.

    The head reads every position (Flatten + Linear), so gradients vary over the map.
    """

    def __init__(self, in_channels: int = 2, size: int = 6, classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 3, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(3, 4, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * size * size, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def tiny(seed: int = 0, **kwargs) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet(**kwargs).double()


def layer_and_gradient(model: TinyNet, x: torch.Tensor, targets: list[int]):
    """A = features.2's output, G = dS/dA, written out without hooks (the tests' oracle)."""
    a = model.features[:3](x).detach().requires_grad_(True)
    logits = model.head(torch.relu(a))
    score = logits[torch.arange(len(targets)), targets].sum()
    (g,) = torch.autograd.grad(score, a)
    return a.detach(), g, logits.detach()
