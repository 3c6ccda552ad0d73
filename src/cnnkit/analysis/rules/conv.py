"""Convolutions, regular, grouped, depthwise and transposed (seed 000 §2.2, seed 002)."""

from __future__ import annotations

from torch import ops

from cnnkit.analysis.graph import Node
from cnnkit.analysis.rules._base import OpFigures, numel, per_axis, register_rule
from cnnkit.analysis.spatial import Window
from cnnkit.arith.conv import conv_macs_from_shapes

aten = ops.aten


@register_rule(aten.convolution, aten._convolution, aten.convolution_overrideable)
def convolution(node: Node) -> OpFigures:
    """MACs = N prod(spatial) w[0] w[1] prod(k): flop_counter's count / 2 (arith.conv).

    ``spatial`` is the output's for a regular conv and the input's for a transposed one (every
    input position scatters one kernel). The bias add is element-wise: one FLOP per output
    element, in ``other_flops``.
    """
    x, w = node.arg("input"), node.arg("weight")
    transposed = bool(node.arg("transposed", False))
    macs = conv_macs_from_shapes(x.shape, w.shape, node.output_shape, transposed=transposed)
    bias = node.arg("bias")
    ndim = len(w.shape) - 2
    padding = per_axis(node.arg("padding", 0), ndim)
    spatial = Window(
        kernel_size=tuple(w.shape[2:]),
        stride=per_axis(node.arg("stride", 1), ndim),
        padding=tuple((p, p) for p in padding),
        dilation=per_axis(node.arg("dilation", 1), ndim),
        transposed=transposed,
    )
    return OpFigures(
        macs=macs, other_flops=numel(node.output_shape) if bias is not None else 0, spatial=spatial
    )
