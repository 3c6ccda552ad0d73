"""Ops that only move or copy values: views, permutes, slices, concatenation, padding, copies.

They cost nothing (0 FLOPs: copying is memory traffic, not arithmetic) and each has an explicit
rule, so that "unsupported" never hides a forgotten op. Their descriptors let the receptive
field follow the spatial axes through flattening, permutes (ConvNeXt's NHWC blocks), crops and
pads.
"""

from __future__ import annotations

import math
from collections import Counter

from torch import ops

from cnnkit.analysis.graph import Node
from cnnkit.analysis.rules._base import (
    RULES,
    OpFigures,
    normalize_dim,
    normalize_dims,
    register_rule,
)
from cnnkit.analysis.spatial import (
    POINTWISE,
    RESHAPE,
    UNKNOWN,
    Concat,
    Mix,
    Pad,
    Permute,
    Select,
    Slice,
    Split,
    Unfold,
)

aten = ops.aten

_FREE = OpFigures()


def _rank(node: Node) -> int:
    return max(len(node.inputs[0].shape), 1)


def _register(names: tuple[str, ...], figures: OpFigures) -> None:
    def rule(node: Node) -> OpFigures:
        return figures

    rule.__doc__ = "Free: 0 FLOPs; " + type(figures.spatial).__name__ + " of the positions."
    for name in names:
        packet = getattr(aten, name, None)
        if packet is not None:
            RULES.add(packet, rule)


_register(
    ("view", "_unsafe_view", "reshape", "_reshape_alias", "squeeze", "squeeze_", "unsqueeze",
     "unsqueeze_", "flatten", "unflatten", "view_as", "view_copy"),
    OpFigures(spatial=RESHAPE),
)  # fmt: skip
_register(
    ("expand", "expand_as", "broadcast_to", "clone", "contiguous", "_to_copy", "alias", "detach",
     "detach_", "copy_", "copy", "tril", "triu", "tril_", "triu_", "lift_fresh_copy"),
    OpFigures(spatial=POINTWISE),
)  # fmt: skip
_register(
    ("index", "_unsafe_index", "index_put", "index_put_", "scatter", "scatter_", "scatter_add",
     "scatter_add_", "masked_scatter", "index_copy", "take", "masked_select", "nonzero",
     "as_strided", "as_strided_", "diagonal", "embedding", "one_hot"),
    OpFigures(spatial=UNKNOWN),
)  # fmt: skip


@register_rule(aten.permute)
def permute(node: Node) -> OpFigures:
    """Dims reordered: output dim i is input dim dims[i]."""
    rank = _rank(node)  # once, not per dim
    dims = tuple([normalize_dim(int(d), rank) for d in node.arg("dims")])
    return OpFigures(spatial=Permute(dims))


@register_rule(aten.transpose, aten.t, aten.transpose_, aten.t_)
def transpose(node: Node) -> OpFigures:
    """Two dims swapped (``t``: the two dims of a matrix)."""
    rank = _rank(node)
    order = list(range(rank))
    if node.name in ("transpose", "transpose_"):
        first = normalize_dim(int(node.arg("dim0")), rank)
        second = normalize_dim(int(node.arg("dim1")), rank)
        order[first], order[second] = order[second], order[first]
    elif rank == 2:
        order = [1, 0]
    return OpFigures(spatial=Permute(tuple(order)))


@register_rule(aten.slice, aten.narrow)
def slice_(node: Node) -> OpFigures:
    """``x[..., start:end:step]`` along one dim (start clamped as PyTorch clamps it)."""
    shape = node.inputs[0].shape
    dim = normalize_dim(int(node.arg("dim", 0)), _rank(node))
    size = shape[dim] if shape else 1
    start = node.arg("start")
    start = 0 if start is None else int(start)
    if start < 0:
        start += size
    start = min(max(start, 0), size)
    return OpFigures(spatial=Slice(dim, start, int(node.arg("step", 1) or 1)))


@register_rule(aten.select)
def select(node: Node) -> OpFigures:
    """``x[..., index]``: one position along ``dim``, which disappears."""
    shape = node.inputs[0].shape
    dim = normalize_dim(int(node.arg("dim")), _rank(node))
    index = int(node.arg("index"))
    return OpFigures(spatial=Select(dim, index + shape[dim] if index < 0 else index))


@register_rule(aten.cat, aten.stack, aten.concat, aten.concatenate)
def concatenate(node: Node) -> OpFigures:
    """Inputs joined along ``dim`` (a new dim for ``stack``)."""
    stack = node.name == "stack"
    rank = len(node.output_shape)
    return OpFigures(spatial=Concat(normalize_dim(int(node.arg("dim", 0)), rank), new_dim=stack))


@register_rule(
    aten.split, aten.split_with_sizes, aten.tensor_split, aten.chunk, aten.split_copy,
    aten.unsafe_split, aten.unsafe_split_with_sizes, aten.unsafe_chunk,
)  # fmt: skip
def split(node: Node) -> OpFigures:
    """Consecutive pieces along ``dim`` (``unsafe_split``: nn.LSTM's gates, the same pieces)."""
    return OpFigures(spatial=Split(normalize_dim(int(node.arg("dim", 0)), _rank(node))))


@register_rule(aten.unbind)
def unbind(node: Node) -> OpFigures:
    """Every position along ``dim`` as its own tensor."""
    dim = normalize_dim(int(node.arg("dim", 0)), _rank(node))
    return OpFigures(spatial=Split(dim, removes_dim=True))


@register_rule(
    aten.constant_pad_nd,
    aten.reflection_pad1d,
    aten.reflection_pad2d,
    aten.reflection_pad3d,
    aten.replication_pad1d,
    aten.replication_pad2d,
    aten.replication_pad3d,
)
def pad(node: Node) -> OpFigures:
    """F.pad's list, last dim first: (left, right, top, bottom, ...); negative values crop."""
    values = [int(v) for v in (node.arg("pad") or node.arg("padding"))]
    pairs = tuple((values[i], values[i + 1]) for i in range(0, len(values) - 1, 2))
    return OpFigures(spatial=Pad(pairs))


@register_rule(aten.roll, aten.flip, aten.sort, aten.topk, aten.argsort)
def rearrange(node: Node) -> OpFigures:
    """Positions moved along ``dims`` (a circular shift, a flip, a sort): each output may come
    from any position along them."""
    dims = node.arg("dims")
    if dims is None:
        dims = node.arg("dim", -1)
    if node.name == "roll" and not dims:
        dims = list(range(_rank(node)))  # roll without dims rolls the flattened tensor
    return OpFigures(spatial=Mix(normalize_dims(dims, _rank(node))))


@register_rule(aten.index_select, aten.gather, aten.repeat, aten.repeat_interleave)
def gather(node: Node) -> OpFigures:
    """Positions picked or repeated along a dim: a spatial dim among them becomes unknown."""
    rank = _rank(node)
    if node.name == "repeat":
        repeats = [int(r) for r in node.arg("repeats")]
        offset = len(repeats) - rank
        dims = tuple(d - offset for d, r in enumerate(repeats) if r != 1 and d >= offset)
        return OpFigures(spatial=Mix(dims, exact=False))
    dim = node.arg("dim")
    dims = tuple(range(rank)) if dim is None else (normalize_dim(int(dim), rank),)
    return OpFigures(spatial=Mix(dims, exact=False))


@register_rule(aten.unfold)
def unfold(node: Node) -> OpFigures:
    """``Tensor.unfold(dim, size, step)``: windows of ``size`` every ``step`` along ``dim``
    (overlapping where step < size, halo attention's key blocks), the offsets a new last dim."""
    dim = normalize_dim(int(node.arg("dimension")), _rank(node))
    return OpFigures(spatial=Unfold((dim,), (int(node.arg("size")),), (int(node.arg("step")),)))


@register_rule(aten.im2col, aten.col2im)
def im2col(node: Node) -> OpFigures:
    """``F.unfold`` (im2col): (C, H, W) -> (C kh kw, L), a window per position of the flattened
    grid L, copies: 0 FLOPs. ``F.fold`` (col2im) puts them back, summing where windows overlap:
    an output element that n windows cover costs n - 1 additions."""
    pairs = [node.arg(name) for name in ("kernel_size", "stride", "padding", "dilation")]
    kernel, stride, padding, dilation = (tuple(int(v) for v in value) for value in pairs)
    fold = node.name == "col2im"
    spatial = Unfold((-2, -1), kernel, stride, padding, dilation, flat=True, fold=fold)
    if not fold:
        return OpFigures(spatial=spatial)
    out = node.output_shape
    per_axis = [
        Counter(_covers(n, *args))
        for n, *args in zip(out[-2:], kernel, stride, padding, dilation, strict=True)
    ]
    additions = sum(
        count_h * count_w * max(h * w - 1, 0)
        for h, count_h in per_axis[0].items()
        for w, count_w in per_axis[1].items()
    )
    return OpFigures(other_flops=math.prod(out[:-2]) * additions, spatial=spatial)


def _covers(size: int, kernel: int, stride: int, padding: int, dilation: int) -> list[int]:
    """How many windows cover each position of an axis of ``size`` (F.fold's sums)."""
    covers = [0] * size
    windows = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    for start in range(0, windows * stride, stride):
        for tap in range(start - padding, start - padding + dilation * kernel, dilation):
            if 0 <= tap < size:
                covers[tap] += 1
    return covers
