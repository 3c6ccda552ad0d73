"""Normalisation: batch, layer, group and RMS norm (seed 002 "BatchNorm"; seed 001).

Element-wise cost convention: applying a normalisation is 2 FLOPs per element (scale and shift,
as it is folded at inference); computing its statistics from the data adds 4 per element (1 for
the mean, 3 for the variance). RMS norm decomposes into element-wise ops before dispatch.
Statistics computed over positions make the exact receptive field global; they are broadcast
back over those positions, so the local field (which cuts broadcasts) is kept.
"""

from __future__ import annotations

from torch import ops

from cnnkit.analysis.graph import Node
from cnnkit.analysis.rules._base import OpFigures, numel, register_rule
from cnnkit.analysis.spatial import POINTWISE, Mix

aten = ops.aten

APPLY_FLOPS = 2
STATISTICS_FLOPS = 4


@register_rule(
    aten.native_batch_norm,
    aten._native_batch_norm_legit,
    aten._native_batch_norm_legit_functional,
    aten.cudnn_batch_norm,
    aten.miopen_batch_norm,
)
def batch_norm(node: Node) -> OpFigures:
    """Eval: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta, 2 FLOPs/element,
    position by position. Training: the mean and variance over (N, *spatial) are computed from
    the batch (+4 FLOPs/element) and every output then depends on every position."""
    x = node.inputs[0]
    training = bool(node.arg("training", False))
    per_element = APPLY_FLOPS + (STATISTICS_FLOPS if training else 0)
    spatial = Mix((0, *range(2, len(x.shape))), statistics=True) if training else POINTWISE
    return OpFigures(other_flops=per_element * numel(x.shape), spatial=spatial)


@register_rule(aten._native_batch_norm_legit_no_training)
def batch_norm_eval(node: Node) -> OpFigures:
    """Eval-mode batch norm: 2 FLOPs per element, position by position."""
    return OpFigures(other_flops=APPLY_FLOPS * numel(node.inputs[0].shape))


@register_rule(aten.native_layer_norm)
def layer_norm(node: Node) -> OpFigures:
    """Statistics over the last len(normalized_shape) dims: 6 FLOPs per element."""
    x = node.inputs[0]
    count = len(node.arg("normalized_shape"))
    dims = tuple(range(len(x.shape) - count, len(x.shape)))
    return OpFigures(
        other_flops=(APPLY_FLOPS + STATISTICS_FLOPS) * numel(x.shape),
        spatial=Mix(dims, statistics=True),
    )


@register_rule(aten.native_group_norm)
def group_norm(node: Node) -> OpFigures:
    """Statistics over each group of channels and every position: 6 FLOPs per element."""
    x = node.inputs[0]
    return OpFigures(
        other_flops=(APPLY_FLOPS + STATISTICS_FLOPS) * numel(x.shape),
        spatial=Mix(tuple(range(1, len(x.shape))), statistics=True),
    )
