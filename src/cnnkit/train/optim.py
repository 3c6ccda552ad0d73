"""Optimiser construction: parameter groups, SGD or AdamW, and the per-step learning rate.

Two groups: conv/linear weights, and "small" parameters (biases and normalisation weights, any
parameter with fewer than two dimensions). The second group can skip weight decay (decay on a BN
scale or a bias only fights the normalisation) and can take a larger learning rate (airbench
trains its BN biases 64x faster). Frozen parameters (``requires_grad=False``) are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from cnnkit.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from torch import nn

    from cnnkit.train.config import OptimisationConfig


def parameter_groups(
    model: nn.Module,
    config: OptimisationConfig,
    name: str = "the model",
    lr_scales: Mapping[str, float] | None = None,
) -> list[dict]:
    """``[{weights}, {biases and norm weights}]`` with their weight decay and lr multiplier.

    Each group carries ``lr_scale``: the step's rate is ``schedule(progress) * lr_scale``.
    ``lr_scales`` (fine-tuning's per-stage rates: parameter name -> multiplier) splits each
    group by multiplier, which multiplies the group's ``lr_scale``.
    """
    by_scale: dict[float, tuple[list, list]] = {}
    for path, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        weights, small = by_scale.setdefault(
            lr_scales.get(path, 1.0) if lr_scales else 1.0, ([], [])
        )
        (weights if parameter.dim() >= 2 else small).append(parameter)
    if not by_scale:
        raise ConfigError(f"--model {name}: the model has no trainable parameters")
    # A larger rate for the small parameters keeps their per-step decay lr * wd unchanged
    # (airbench's bias_scaler), so the rate multiplier divides their weight decay.
    small_decay = 0.0 if not config.decay_norm_bias else config.weight_decay / config.bias_lr_scale
    groups = []
    for scale, (weights, small) in by_scale.items():
        groups += [
            {"params": weights, "weight_decay": config.weight_decay, "lr_scale": scale},
            {
                "params": small,
                "weight_decay": small_decay,
                "lr_scale": scale * config.bias_lr_scale,
            },
        ]
    return [g for g in groups if g["params"]]


def make_optimizer(
    model: nn.Module,
    config: OptimisationConfig,
    *,
    lr: float,
    name: str = "the model",
    lr_scales: Mapping[str, float] | None = None,
) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov, L2 weight decay) or AdamW (decoupled decay) over the groups.

    With SGD and weight decay ``wd`` each step is ``v = momentum * v + g + wd * w``,
    ``w -= lr * (g + momentum * v)`` for Nesterov (torch.optim.SGD); AdamW decays
    ``w -= lr * wd * w`` apart from the adaptive step (Loshchilov and Hutter, 2019).
    """
    groups = parameter_groups(model, config, name, lr_scales)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
        )
    return torch.optim.AdamW(groups, lr=lr, betas=(config.momentum, 0.999))


def set_learning_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    """Set every group's ``lr`` to ``rate * group['lr_scale']``."""
    for group in optimizer.param_groups:
        group["lr"] = rate * group.get("lr_scale", 1.0)
