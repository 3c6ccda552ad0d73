"""The weight rewrites of Conv-BN folding (seed 002), computed in float64.

An eval-mode BatchNorm is a per-channel affine map ``y = s x + t`` with
``s = γ / √(σ² + ε)`` and ``t = β − μ s`` (running mean μ, running variance σ²). After a conv
(or linear) layer it folds into that layer's output channels (002):
``W' = s·W`` per output channel, ``b' = s (b − μ) + β``. Before one, into its input channels:
``W'[o, i] = W[o, i] s_i`` and ``b'_o = b_o + Σ_{i,k} W[o, i, k] t_i``, exact only when every
input position the kernel reads is a BN output (no zero padding, whose zeros the BN would not
have shifted).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

ConvModule = nn.Conv1d | nn.Conv2d | nn.Conv3d
TransposedModule = nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d


def bn_affine(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s, t)`` of an eval-mode BatchNorm in float64: ``s = γ/√(σ²+ε)``, ``t = β − μ s``."""
    assert bn.running_mean is not None and bn.running_var is not None
    mean = bn.running_mean.detach().double()
    var = bn.running_var.detach().double()
    scale = 1.0 / torch.sqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.detach().double()
    shift = -mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().double()
    return scale, shift


def _set(layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Write float64 results back in the layer's own dtype, device and requires_grad."""
    old = _weight(layer)
    with torch.no_grad():
        layer.weight = nn.Parameter(weight.to(old.dtype), requires_grad=old.requires_grad)
        layer.bias = nn.Parameter(bias.to(old.dtype), requires_grad=old.requires_grad)


def _weight(layer: nn.Module) -> torch.Tensor:
    # nn.Module's attribute access is typed Tensor | Module; conv and linear weights are tensors
    return cast(torch.Tensor, layer.weight)


def _bias(layer: nn.Module, channels: int, like: torch.Tensor) -> torch.Tensor:
    bias = cast(torch.Tensor | None, layer.bias)
    if bias is None:
        return torch.zeros(channels, dtype=torch.float64, device=like.device)
    return bias.detach().double()


def fold_bn_into_output(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> None:
    """``layer`` (Conv, ConvTranspose or Linear) becomes ``bn ∘ layer``: ``W' = s·W`` on each
    output channel, ``b' = s b + t`` (= ``s (b − μ) + β``).

    A transposed conv's weight is ``(C_in, C_out/g, k...)``: output channel ``g·C_out/g + j``
    is column ``j`` of group ``g``'s rows, so the scale goes on dim 1, per group.
    """
    scale, shift = bn_affine(bn)
    weight = _weight(layer).detach().double()
    out_channels = scale.numel()
    bias = _bias(layer, out_channels, weight)
    if isinstance(layer, TransposedModule):
        groups = layer.groups
        grouped = weight.reshape(groups, weight.shape[0] // groups, *weight.shape[1:])
        ones = [1] * (weight.dim() - 2)
        grouped = grouped * scale.reshape(groups, 1, out_channels // groups, *ones)
        weight = grouped.reshape(weight.shape)
    else:
        weight = weight * scale.reshape(-1, *[1] * (weight.dim() - 1))
    _set(layer, weight, scale * bias + shift)


def fold_bn_into_input(bn: nn.modules.batchnorm._BatchNorm, layer: nn.Module) -> None:
    """``layer`` (Conv or Linear, not transposed) becomes ``layer ∘ bn``.

    Conv weight ``(C_out, C_in/g, k...)``: output channel ``o`` of group ``g = o // (C_out/g)``
    reads input channel ``g·C_in/g + j`` through column ``j``, so each row is scaled by its own
    group's slice of ``s``; the bias gains ``Σ_{j,k} W[o, j, k] t_j`` (valid where no zero
    padding is read, which the caller checks).
    """
    scale, shift = bn_affine(bn)
    weight = _weight(layer).detach().double()
    out_channels = weight.shape[0]
    bias = _bias(layer, out_channels, weight)
    groups = getattr(layer, "groups", 1)
    per_group_in = weight.shape[1]
    per_group_out = out_channels // groups
    ones = [1] * (weight.dim() - 2)

    def per_row(values: torch.Tensor) -> torch.Tensor:  # (C_out, C_in/g, 1...) view of values
        rows = values.reshape(groups, 1, per_group_in).expand(groups, per_group_out, per_group_in)
        return rows.reshape(out_channels, per_group_in, *ones)

    new_bias = bias + (weight * per_row(shift)).sum(dim=tuple(range(1, weight.dim())))
    _set(layer, weight * per_row(scale), new_bias)
