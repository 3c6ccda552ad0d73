"""Exponential moving average of a model's weights (Polyak averaging).

After each optimiser step every floating-point entry of the state dict is updated as
``ema = decay * ema + (1 - decay) * value``; integer buffers (BatchNorm's ``num_batches_tracked``)
are copied. BatchNorm running statistics are averaged like weights, which is what timm's
``ModelEmaV2`` does; the averaged model is evaluated as it is.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """Holds ``module``: a copy of the model whose state is the running average."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """``ema = decay * ema + (1 - decay) * model`` for floats; copy for the rest."""
        current = model.state_dict()
        for name, average in self.module.state_dict().items():
            value = current[name].detach()
            if average.dtype.is_floating_point:
                average.lerp_(value.to(average.dtype), 1.0 - self.decay)
            else:
                average.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
