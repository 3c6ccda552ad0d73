"""Stochastic depth ("drop path"): drop a whole residual branch at random while training (C1).

Huang et al., "Deep Networks with Stochastic Depth" (arXiv:1603.09382), eq. 2: the branch survives
with probability ``1 - p``. Survivors are scaled by ``1 / (1 - p)`` during training (inverted
scaling, as torchvision and timm do) so that ``E[output] = input`` and evaluation is the identity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cnnkit.errors import ConfigError

MODES = ("batch", "row")


def stochastic_depth(input: Tensor, p: float, mode: str = "row", training: bool = True) -> Tensor:
    """Zero ``input`` with probability ``p`` and scale survivors by ``1 / (1 - p)``.

    ``mode="row"`` draws one Bernoulli(1 - p) per sample (the first axis), ``mode="batch"`` one
    for the whole batch. Identity when ``training`` is False or ``p == 0``; all zeros when
    ``p == 1``. Expectation: ``E[output] = (1 - p) * input / (1 - p) = input``.
    """
    _check(p, mode)
    if not training or p == 0.0:
        return input
    survival = 1.0 - p
    shape = [input.shape[0]] + [1] * (input.ndim - 1) if mode == "row" else [1] * input.ndim
    mask = torch.empty(shape, dtype=input.dtype, device=input.device).bernoulli_(survival)
    if survival > 0.0:
        mask.div_(survival)
    return input * mask


class StochasticDepth(nn.Module):
    """Module form of :func:`stochastic_depth` (active only in training mode)."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        _check(p, mode)
        self.p = p
        self.mode = mode

    def forward(self, input: Tensor) -> Tensor:
        return stochastic_depth(input, self.p, self.mode, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


def _check(p: float, mode: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"stochastic depth: drop probability p must be in [0, 1], got {p!r}")
    if mode not in MODES:
        raise ConfigError(f"stochastic depth: mode must be 'batch' or 'row', got {mode!r}")
