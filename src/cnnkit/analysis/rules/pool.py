"""Pooling and reductions: max/avg pools, adaptive pools, mean/sum/amax..., softmax.

Element-wise cost convention: a pooling window of k elements costs k FLOPs per output element
(k - 1 comparisons or adds, and one divide for an average); a reduction costs one FLOP per
input element; softmax and log-softmax cost 3 per element (exp, sum, divide).
"""

from __future__ import annotations

import re

from torch import ops

from cnnkit.analysis.graph import Node
from cnnkit.analysis.rules._base import (
    OpFigures,
    normalize_dim,
    normalize_dims,
    numel,
    per_axis,
    register_rule,
)
from cnnkit.analysis.spatial import POINTWISE, Mix, Resample, Window
from cnnkit.arith._axes import product
from cnnkit.arith.pool import adaptive_pool_windows

aten = ops.aten

SOFTMAX_FLOPS = 3


def _spatial_ndim(node: Node) -> int:
    """1, 2 or 3, from the op's name (``max_pool2d_with_indices`` -> 2)."""
    match = re.search(r"(\d)d", node.name)
    return int(match.group(1)) if match else len(node.inputs[0].shape) - 2


@register_rule(
    aten.max_pool1d_with_indices,
    aten.max_pool2d_with_indices,
    aten.max_pool3d_with_indices,
    aten.max_pool1d,
    aten.max_pool2d,
    aten.max_pool3d,
    aten.avg_pool1d,
    aten.avg_pool2d,
    aten.avg_pool3d,
)
def pool(node: Node) -> OpFigures:
    """A window of prod(k) elements per output element: prod(k) FLOPs each; the field steps
    like a convolution's (the stride defaults to the kernel size, as in PyTorch)."""
    ndim = _spatial_ndim(node)
    kernel = per_axis(node.arg("kernel_size"), ndim)
    stride = per_axis(node.arg("stride"), ndim) or kernel
    padding = per_axis(node.arg("padding", 0), ndim) or (0,) * ndim
    dilation = per_axis(node.arg("dilation", 1), ndim) or (1,) * ndim
    spatial = Window(
        kernel_size=kernel,
        stride=stride,
        padding=tuple((p, p) for p in padding),
        dilation=dilation,
    )
    return OpFigures(other_flops=numel(node.output_shape) * product(kernel), spatial=spatial)


@register_rule(
    aten._adaptive_avg_pool2d,
    aten._adaptive_avg_pool3d,
    aten.adaptive_avg_pool1d,
    aten.adaptive_max_pool1d,
    aten.adaptive_max_pool2d,
    aten.adaptive_max_pool3d,
)
def adaptive_pool(node: Node) -> OpFigures:
    """Window i of m over n inputs spans [floor(i n/m), ceil((i+1) n/m)) (arith.pool): FLOPs =
    the summed window sizes. Equal windows step like a pool; one window sees the whole axis;
    m = f n outputs repeat each input f times (a nearest upsampling, as VGG's 7 x 7 pool does
    to a smaller map); unequal windows have no single field (reported as unknown)."""
    x = node.inputs[0].shape
    out = node.output_shape
    ndim = _spatial_ndim(node)
    sizes, outputs = x[-ndim:], out[-ndim:]
    windows = adaptive_pool_windows(sizes, outputs)
    summed = 1
    kernel, stride, global_dims, unknown_dims = [], [], [], []
    for axis, axis_windows in enumerate(windows):
        widths = [end - start for start, end in axis_windows]
        summed *= sum(widths)
        starts = [start for start, _ in axis_windows]
        step = starts[1] - starts[0] if len(starts) > 1 else widths[0]
        uniform = len(set(widths)) == 1 and all(s == i * step for i, s in enumerate(starts))
        if len(axis_windows) == 1 and sizes[axis] > 1:
            global_dims.append(axis)
        elif not uniform or step == 0:  # step 0: an input repeated (more outputs than inputs)
            unknown_dims.append(axis)
        kernel.append(widths[0])
        stride.append(max(step, 1))
    flops = numel(x[:-ndim]) * summed
    if all(m % n == 0 for n, m in zip(sizes, outputs, strict=True)) and outputs != sizes:
        # m = f n outputs: window i is input floor(i / f) alone, a nearest upsampling by f
        return OpFigures(other_flops=flops, spatial=Resample(tuple(outputs), "nearest"))
    spatial = Window(
        kernel_size=tuple(kernel),
        stride=tuple(stride),
        padding=((0, 0),) * ndim,
        dilation=(1,) * ndim,
        global_dims=tuple(global_dims),
        unknown_dims=tuple(unknown_dims),
    )
    return OpFigures(other_flops=flops, spatial=spatial)


@register_rule(
    aten.mean,
    aten.sum,
    aten.amax,
    aten.amin,
    aten.max,
    aten.min,
    aten.var,
    aten.std,
    aten.var_mean,
    aten.std_mean,
    aten.logsumexp,
    aten.prod,
    aten.norm,
    aten.linalg_vector_norm,
    aten.argmax,
    aten.argmin,
    aten.all,
    aten.any,
    aten.cumsum,
    aten.cumprod,
    aten.logcumsumexp,
)
def reduction(node: Node) -> OpFigures:
    """One FLOP per input element; each output depends on every position along the dims.

    ``max``/``min`` with two tensors are element-wise (one FLOP per output element).
    """
    x = node.inputs[0].shape
    if len(node.inputs) > 1 and node.name in ("max", "min"):
        return OpFigures(other_flops=numel(node.output_shape), spatial=POINTWISE)
    dims = node.arg("dim")
    if dims is None:
        dims = node.arg("axis")
    return OpFigures(other_flops=numel(x), spatial=Mix(normalize_dims(dims, len(x))))


@register_rule(aten._softmax, aten._log_softmax, aten._safe_softmax, aten.softmax, aten.log_softmax)
def softmax(node: Node) -> OpFigures:
    """exp, sum and divide along ``dim``: 3 FLOPs per element. The sum is a statistic broadcast
    back along ``dim``: the exact field becomes global there, the local field is kept."""
    x = node.inputs[0].shape
    dim = normalize_dim(int(node.arg("dim")), max(len(x), 1))
    return OpFigures(other_flops=SOFTMAX_FLOPS * numel(x), spatial=Mix((dim,), statistics=True))
