"""Ops that move positions along the axes they hold: windows, resampling, slices, padding.

Each function takes the layout of the op's (first) data input and returns the output's layout:
the dims that hold each axis, and both fields per axis stepped by arith's formulas (seed 002):
the exact one and the local one (:mod:`cnnkit.analysis.layout`). Global, unknown and
broadcast-only fields stay as they are; a stretch of one position that sees the whole axis over
many (upsampling a pooled 1x1 context) is a broadcast, which the local field cuts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from cnnkit.analysis import spatial as sp
from cnnkit.analysis.graph import Node
from cnnkit.analysis.layout import (
    BROADCAST_ONLY,
    AxisField,
    AxisState,
    Dim,
    Layout,
    axis_dim,
    dim_size,
    forget,
    global_axis,
    plain_dim,
    reduced_dim,
)
from cnnkit.arith.receptive_field import Field, shift, step, transpose_step, upsample_step

Change = Callable[..., AxisField | None]  # called with field=<the axis's Field>
NodeLayouts = tuple["Layout | None", ...]


def change_axis(fields: list[AxisState], local: list[AxisState], axis: int, change: Change) -> None:
    """Apply ``change`` (called as ``change(field=...)``) to the finite exact and local fields
    of ``axis``, in place; once when they are equal."""
    exact = fields[axis]
    new = None
    if isinstance(exact, AxisField) and not exact.is_global:
        new = change(field=exact.field)
        fields[axis] = new
    elif isinstance(exact, AxisField) and exact.grid is not None:
        fields[axis] = _regridded(exact, change)
    current = local[axis]
    if isinstance(current, AxisField) and not current.is_global:
        local[axis] = new if current == exact else change(field=current.field)
    elif isinstance(current, AxisField) and current.grid is not None:
        local[axis] = fields[axis] if current == exact else _regridded(current, change)


def _regridded(value: AxisField, change: Change) -> AxisField:
    """A global field stays global; its positions' grid takes the step (a strided conv after
    attention doubles the jump). A step that ends the field (a global pool) ends the grid."""
    moved = change(field=value.grid)
    if moved is None or moved.is_global:
        return moved if moved is not None and moved.is_global else AxisField(value.field, True)
    return AxisField(value.field, True, grid=moved.field)


def _stepped(formula: Callable[..., Field], *arguments: object, field: Field) -> AxisField:
    """arith's ``formula(field, *arguments)`` as an axis field.

    Remembered by its exact arguments (their types included, inside tuples too: ``1`` and
    ``1.0`` are equal keys but not equal arguments): repeated blocks step the same field (a
    global field's grid after attention) by the same kernel again and again, and building a
    ``Field`` validates it."""
    try:
        return _stepped_once(formula, arguments, _kinds(arguments), field)
    except TypeError:  # an unhashable argument: computed every time
        return AxisField(formula(field, *arguments))


def _kinds(value: object) -> object:
    """The types in ``value``, through tuples and lists (``((1, 1),)`` vs ``((1.0, 1),)``)."""
    if type(value) is tuple or type(value) is list:
        return (type(value), *[_kinds(item) for item in value])
    return type(value)


@functools.lru_cache(maxsize=4096)
def _stepped_once(
    formula: Callable[..., Field], arguments: tuple[object, ...], types: object, field: Field,
) -> AxisField:  # fmt: skip
    return AxisField(formula(field, *arguments))


def _replaced(value: AxisField | None, field: Field) -> AxisField | None:
    """A field replaced by ``value`` (global after a global pool; ``None``: unknown)."""
    return value


def _is_global(value: AxisState) -> bool:
    return isinstance(value, AxisField) and value.is_global


def _forget_both(
    fields: list[AxisState], local: list[AxisState], axes: set[int]
) -> tuple[list[AxisState], list[AxisState]]:
    return list(forget(fields, axes)), list(forget(local, axes))


def _keeps_reduced(factors: Dim, size: int) -> bool:
    """A 1x1 conv (or slice) over a pooled dim: the output is still that one reduced position."""
    return size == 1 and bool(factors) and all(f.reduced for f in factors)


def resize_leading(
    layout: Layout, out: Sequence[int], count: int
) -> tuple[list[Dim], list[AxisState], list[AxisState]]:
    """Dims before the last ``count`` that change size (a conv's channels): no axis survives a
    change of size in a dim that is not windowed."""
    dims, fields, local = list(layout.dims), list(layout.fields), list(layout.local)
    for d in range(min(len(dims), len(out)) - count):
        if dim_size(dims[d]) != out[d]:
            fields, local = _forget_both(fields, local, layout.axes_in(d))
            dims[d] = plain_dim(out[d])
    return dims, fields, local


def window(
    kind: sp.Window, layout: Layout, shape: Sequence[int], out: Sequence[int], sizes: Sequence[int]
) -> Layout:
    """Convolution or pooling over the last ``len(kind.kernel_size)`` dims."""
    count = len(kind.kernel_size)
    dims, fields, local = resize_leading(layout, out, count)
    for i in range(count):
        d = len(shape) - count + i
        axes = layout.axes_in(d)
        axis = layout.clean_axis(d)
        if not axes:
            dims[d] = plain_dim(out[d])
            continue
        if axis is None:  # a window over a dim that mixes axes: no closed form
            if not _keeps_reduced(layout.dims[d], out[d]):
                fields, local = _forget_both(fields, local, axes)
                dims[d] = plain_dim(out[d])
            continue
        dims[d] = axis_dim(axis, out[d])
        k, s, dilation = kind.kernel_size[i], kind.stride[i], kind.dilation[i]
        change: Change
        if i in kind.global_dims:
            dims[d] = reduced_dim((axis,))
            change = functools.partial(_replaced, value=global_axis(sizes[axis]))
        elif i in kind.unknown_dims:
            change = functools.partial(_replaced, value=None)
        elif kind.transposed:
            pad = kind.padding[i][0]
            change = functools.partial(_stepped, transpose_step, k, s, pad, dilation)
        else:
            change = functools.partial(_stepped, step, k, s, (kind.padding[i],), dilation)
        change_axis(fields, local, axis, change)
    return Layout(tuple(dims), tuple(fields), tuple(local))


def resample(kind: sp.Resample, layout: Layout, shape: Sequence[int], out: Sequence[int]) -> Layout:
    """Upsampling of the last ``len(kind.output_size)`` dims."""
    count = len(kind.output_size)
    dims, fields, local = resize_leading(layout, out, count)
    for d in range(len(out) - count, len(out)):
        held = layout.axes_in(d) if d < len(layout.dims) else set()
        stretched = len(held) == 1 and shape[d] == 1 and out[d] > 1  # one position to many
        axis = layout.clean_axis(d) if d < len(layout.dims) else None
        if axis is None:
            if stretched:  # a pooled context upsampled to the map: a broadcast
                (axis,) = held
                dims[d] = axis_dim(axis, out[d])
                if _is_global(fields[axis]):
                    local[axis] = BROADCAST_ONLY
            else:
                fields, local = _forget_both(fields, local, held)
                dims[d] = plain_dim(out[d])
            continue
        dims[d] = axis_dim(axis, out[d])
        factor, remainder = divmod(out[d], shape[d])
        change: Change
        if remainder or kind.taps == "other":
            change = functools.partial(_replaced, value=None)
        elif kind.taps == "nearest":
            change = functools.partial(_stepped, upsample_step, factor)
        else:  # linear, half-pixel centres: transposed conv k = 2f - f % 2, p = ceil((f-1)/2)
            kernel = 2 * factor - factor % 2
            change = functools.partial(_stepped, transpose_step, kernel, factor, factor // 2)
        change_axis(fields, local, axis, change)
        if stretched and _is_global(fields[axis]):  # a summary of the whole axis, spread
            local[axis] = BROADCAST_ONLY
    return Layout(tuple(dims), tuple(fields), tuple(local))


def split(kind: sp.Split, node: Node, layout: Layout) -> NodeLayouts:
    """Piece k starts where pieces 0..k-1 end along the dim."""
    result, offset = [], 0
    for ref in node.outputs:
        if kind.removes_dim:
            result.append(slice_(sp.Select(kind.dim, offset), layout, ref.shape))
            offset += 1
        else:
            result.append(slice_(sp.Slice(kind.dim, offset), layout, ref.shape))
            offset += ref.shape[kind.dim]
    return tuple(result)


def slice_(kind: sp.Slice | sp.Select, layout: Layout, out: Sequence[int]) -> Layout:
    """``x[..., start::step]`` along one dim (arith's ``shift`` then a stride), or one position
    (``select``: the dim disappears)."""
    gone = isinstance(kind, sp.Select)
    d = kind.dim
    start = kind.index if isinstance(kind, sp.Select) else kind.start
    stride = 1 if isinstance(kind, sp.Select) else kind.step
    dims = list(layout.dims)
    fields, local = layout.fields, layout.local  # kept as they are (the same objects) where
    # the slice moves no axis: a split of q, k and v along the channels, whose fields a
    # product then merges (the same objects merge at once)
    axis = layout.clean_axis(d)
    size = 1 if gone else out[d]
    if axis is not None:
        moved, moved_local = list(fields), list(local)
        change_axis(moved, moved_local, axis, functools.partial(_stepped, _crop, start, stride))
        fields, local = tuple(moved), tuple(moved_local)
        dims[d] = axis_dim(axis, size)
    elif not _keeps_reduced(layout.dims[d], size):
        held = layout.axes_in(d)
        if held:  # forget() of no axis: the fields as they are
            fields, local = forget(fields, held), forget(local, held)
        dims[d] = plain_dim(size)
    if gone:
        dims.pop(d)
    return Layout(tuple(dims), fields, local)


def _crop(field: Field, start: int, stride: int) -> Field:
    moved = shift(field, start)
    return step(moved, 1, stride) if stride != 1 else moved


def pad(kind: sp.Pad, layout: Layout, out: Sequence[int]) -> Layout:
    """F.pad of the last dims: padding before moves the start back; a negative value crops."""
    dims, fields, local = list(layout.dims), list(layout.fields), list(layout.local)
    for j, (before, after) in enumerate(kind.pairs):
        d = len(dims) - 1 - j
        axis = layout.clean_axis(d)
        if axis is None:
            fields, local = _forget_both(fields, local, layout.axes_in(d))
            dims[d] = plain_dim(out[d])
            continue
        dims[d] = axis_dim(axis, out[d])
        if before >= 0:
            change = functools.partial(_stepped, step, 1, 1, ((before, max(after, 0)),))
        else:
            change = functools.partial(_stepped, shift, -before)
        change_axis(fields, local, axis, change)
    return Layout(tuple(dims), tuple(fields), tuple(local))
