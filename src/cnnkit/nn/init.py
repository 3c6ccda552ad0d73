"""Weight initialisation: Kaiming with group-aware fans (002) and the zoo's per-family schemes.

Seed 002, "Initialization for Convolution": a conv output sums ``(C_in / g) K_h K_w`` inputs, so
``fan_in = (C_in / g) k_h k_w`` and ``fan_out = (C_out / g) k_h k_w``. Kaiming (He et al., 2015)
sets ``Var(W) = gain^2 / fan`` with ``gain = sqrt(2)`` for ReLU. PyTorch's own
``_calculate_fan_in_and_fan_out`` gets ``fan_in`` right for grouped convs (the weight is
``[C_out, C_in / g, k_h, k_w]``) but counts ``fan_out = C_out k_h k_w`` over *all* output channels.
torchvision initialises with that convention, so the per-family helpers here do too (``groups=1``)
and the zoo's initial weight statistics equal torchvision's; pass ``groups`` for 002's fans.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cnnkit.errors import ConfigError

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm)


def conv_fans(weight: torch.Tensor, groups: int = 1) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a conv or linear weight (002).

    Conv weight ``[C_out, C_in / g, *k]``: ``fan_in = (C_in / g) prod(k)``,
    ``fan_out = (C_out / g) prod(k)``. Linear ``[out, in]``: ``(in, out)``.
    """
    if weight.dim() < 2:
        raise ConfigError(f"conv_fans: expected a weight with >= 2 dims, got {tuple(weight.shape)}")
    if groups < 1 or weight.shape[0] % groups:
        raise ConfigError(f"conv_fans: groups={groups} must divide C_out={weight.shape[0]}")
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] // groups * receptive


def kaiming_std(
    weight: torch.Tensor,
    mode: str = "fan_in",
    nonlinearity: str = "relu",
    groups: int = 1,
    negative_slope: float = 0.0,
) -> float:
    """Kaiming standard deviation ``gain / sqrt(fan)`` (He et al., 2015; 002).

    ``gain = sqrt(2)`` for ReLU, ``sqrt(2 / (1 + a^2))`` for leaky ReLU with slope ``a``.
    """
    if mode not in ("fan_in", "fan_out"):
        raise ConfigError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = conv_fans(weight, groups)
    gain = nn.init.calculate_gain(nonlinearity, negative_slope)  # type: ignore[arg-type]  # torch checks the name
    return gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)


@torch.no_grad()
def kaiming_normal_(
    weight: torch.Tensor,
    mode: str = "fan_in",
    nonlinearity: str = "relu",
    groups: int = 1,
    negative_slope: float = 0.0,
) -> torch.Tensor:
    """Fill ``weight`` from ``N(0, kaiming_std^2)``; ``groups=1`` is PyTorch's convention."""
    return weight.normal_(0.0, kaiming_std(weight, mode, nonlinearity, groups, negative_slope))


@torch.no_grad()
def kaiming_uniform_(
    weight: torch.Tensor,
    mode: str = "fan_in",
    nonlinearity: str = "relu",
    groups: int = 1,
    negative_slope: float = 0.0,
) -> torch.Tensor:
    """Fill ``weight`` from ``U(-b, b)`` with ``b = sqrt(3) kaiming_std`` (same variance)."""
    bound = math.sqrt(3.0) * kaiming_std(weight, mode, nonlinearity, groups, negative_slope)
    return weight.uniform_(-bound, bound)


@torch.no_grad()
def init_norms_(model: nn.Module) -> None:
    """Every BatchNorm/GroupNorm/LayerNorm: weight 1, bias 0 (the identity at start)."""
    for module in model.modules():
        if isinstance(module, _NORMS) and module.weight is not None:
            module.weight.fill_(1.0)
            module.bias.zero_()


@torch.no_grad()
def init_kaiming_fan_out_(model: nn.Module, linear_std: float | None = None) -> None:
    """torchvision's ResNet/VGG scheme: convs ``kaiming_normal(fan_out, relu)``, bias 0; norms 1/0.

    ``linear_std``: ``None`` keeps PyTorch's default Linear init (ResNet); a number draws Linear
    weights from ``N(0, linear_std^2)`` with bias 0 (VGG uses 0.01).
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Linear) and linear_std is not None:
            module.weight.normal_(0.0, linear_std)
            module.bias.zero_()
    init_norms_(model)


@torch.no_grad()
def init_kaiming_fan_in_(model: nn.Module) -> None:
    """torchvision's DenseNet scheme: convs ``kaiming_normal(fan_in, relu)``; norms 1/0;
    Linear bias 0 (weights keep PyTorch's default)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            module.bias.zero_()
    init_norms_(model)


@torch.no_grad()
def init_truncated_normal_(model: nn.Module, std: float = 0.01) -> None:
    """torchvision's GoogLeNet scheme: conv and Linear weights ``N(0, std^2)`` truncated at
    +-2 (absolute, i.e. 200 std: effectively untruncated); norms 1/0; biases untouched."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.trunc_normal_(module.weight, mean=0.0, std=std, a=-2.0, b=2.0)
    init_norms_(model)
