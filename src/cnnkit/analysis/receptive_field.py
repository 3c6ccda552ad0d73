"""Receptive field, jump and start of every tensor of a captured graph (capability A5).

Exact over any DAG: a node's field is the union of its inputs' fields (arith's ``merge``), then
the op's step (arith's ``step``, ``transpose_step``, ``upsample_step``), per spatial axis, in
seed 002's convention (rf, jump, start = centre of output 0, input pixel i centred at i + 1/2).
Each rule says how its op moves positions (:mod:`cnnkit.analysis.spatial`); this module follows
the axes through the tensor's dims (:mod:`cnnkit.analysis.layout`). Element-wise ops keep the
field, adds and concatenations merge, a mix over a whole axis (global pooling, a Linear over the
flattened map, softmax over tokens) makes it global, and an op with no closed form makes it
unknown (``None``), never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence

from cnnkit.analysis import spatial as sp
from cnnkit.analysis.graph import Graph, Node, TensorRef
from cnnkit.analysis.layout import (
    AxisField,
    Dim,
    Factor,
    Fields,
    Layout,
    axis_dim,
    dim_size,
    forget,
    global_axis,
    input_layout,
    merge_fields,
    plain_dim,
    plain_dims,
    reshape_dims,
)
from cnnkit.arith.receptive_field import shift, step, transpose_step, upsample_step

NodeLayouts = tuple["Layout | None", ...]


def propagate(graph: Graph, spatial: Sequence[sp.Spatial]) -> list[NodeLayouts]:
    """The layout (dims and fields) of every output of every node; ``None``: not data."""
    sizes = tuple(graph.input_shape[2:])
    layouts: list[NodeLayouts] = [(input_layout(graph.input_shape),)]
    for node in graph.nodes[1:]:
        inputs = [(ref, layout_of(ref, layouts, sizes)) for ref in node.inputs]
        data = [(ref, lay) for ref, lay in inputs if lay is not None]
        if not data or isinstance(spatial[node.index], sp.Constant):
            layouts.append((None,) * len(node.outputs))
            continue
        kind = spatial[node.index]
        if isinstance(kind, sp.Split):
            layouts.append(_split(kind, node, data[0][1], sizes))
            continue
        first = _apply(kind, node, inputs, data, sizes)
        layouts.append(_all_outputs(node, first, sizes))
    return layouts


def layout_of(
    ref: TensorRef, layouts: Sequence[NodeLayouts], sizes: Sequence[int]
) -> Layout | None:
    """The layout of a tensor argument (a tensor written in place through a view keeps its own
    dims, and its field grows by the writer's)."""
    if ref.producer is None or not ref.is_data:
        return None
    node, output = ref.producer
    layout = layouts[node][output]
    if ref.origin is not None and ref.origin != ref.producer:
        origin = layouts[ref.origin[0]][ref.origin[1]]
        parts = [x for x in (origin, layout) if x is not None]
        base = next((x for x in parts if x.shape == _plain_shape(ref.shape)), None)
        if base is None:
            return _lost(ref.shape, sizes)
        return Layout(base.dims, merge_fields([x.fields for x in parts], sizes))
    if layout is not None and layout.shape != _plain_shape(ref.shape):
        return _lost(ref.shape, sizes)
    return layout


def _plain_shape(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(shape)


def _lost(shape: Sequence[int], sizes: Sequence[int]) -> Layout:
    return Layout(plain_dims(shape), (None,) * len(sizes))


def _all_outputs(node: Node, first: Layout, sizes: Sequence[int]) -> NodeLayouts:
    """Outputs beyond the first: same layout when they have its shape (indices, masks), else
    statistics of the whole input (a batch norm's saved mean): global on every axis."""
    result = [first]
    for ref in node.outputs[1:]:
        if ref.shape == node.outputs[0].shape:
            result.append(first)
        else:
            fields = tuple(global_axis(n) for n in sizes)
            result.append(Layout(plain_dims(ref.shape), fields))
    return tuple(result)


def _apply(
    kind: sp.Spatial,
    node: Node,
    inputs: list[tuple[TensorRef, Layout | None]],
    data: list[tuple[TensorRef, Layout]],
    sizes: Sequence[int],
) -> Layout:
    out = node.output_shape
    first = data[0][1]
    if isinstance(kind, sp.Window):
        return _window(kind, first, data[0][0].shape, out, sizes)
    if isinstance(kind, sp.Resample):
        return _resample(kind, first, data[0][0].shape, out)
    fields = merge_fields([lay.fields for _, lay in data], sizes)
    if isinstance(kind, sp.Pointwise):
        return _pointwise(data, out, fields)
    if isinstance(kind, sp.Mix):
        return _mix(kind.dims, kind.exact, Layout(first.dims, fields), out, sizes)
    if isinstance(kind, sp.MatMul):
        return _matmul(kind, inputs, out, sizes)
    if isinstance(kind, sp.Reshape):
        dims = reshape_dims(first.dims, out)
        if dims is None:
            return _lost(out, sizes)
        return Layout(dims, fields)
    if isinstance(kind, sp.Permute):
        return Layout(tuple(first.dims[d] for d in kind.dims), fields)
    if isinstance(kind, sp.Slice | sp.Select):
        return _slice(kind, first, out, sizes)
    if isinstance(kind, sp.Concat):
        return _concat(kind, first, out, fields)
    if isinstance(kind, sp.Pad):
        return _pad(kind, first, out)
    if isinstance(kind, sp.Global):
        return Layout(plain_dims(out), tuple(global_axis(n) for n in sizes))
    # Unknown: positions may be scrambled along every axis that still varies in an input; an
    # axis no dim holds any more (pooled, selected) has one field for all elements, kept.
    present = {a for _, lay in data for d in range(len(lay.dims)) for a in lay.axes_in(d)}
    return Layout(plain_dims(out), forget(fields, present))


def _resize_leading(
    layout: Layout, out: Sequence[int], count: int
) -> tuple[list[Dim], list[AxisField | None]]:
    """Dims before the last ``count`` that change size (a conv's channels): no axis survives a
    change of size in a dim that is not windowed."""
    dims, fields = list(layout.dims), list(layout.fields)
    for d in range(min(len(dims), len(out)) - count):
        if dim_size(dims[d]) != out[d]:
            fields = list(forget(fields, layout.axes_in(d)))
            dims[d] = plain_dim(out[d])
    return dims, fields


def _window(
    kind: sp.Window, layout: Layout, shape: Sequence[int], out: Sequence[int], sizes: Sequence[int]
) -> Layout:
    count = len(kind.kernel_size)
    dims, fields = _resize_leading(layout, out, count)
    for i in range(count):
        d = len(shape) - count + i
        axes = layout.axes_in(d)
        axis = layout.clean_axis(d)
        if not axes:
            dims[d] = plain_dim(out[d])
            continue
        if axis is None:  # a window over a dim that mixes axes: no closed form
            fields = list(forget(fields, axes))
            dims[d] = plain_dim(out[d])
            continue
        dims[d] = axis_dim(axis, out[d])
        current = fields[axis]
        if current is None or current.is_global:
            continue
        if i in kind.global_dims:
            fields[axis] = global_axis(sizes[axis])
        elif i in kind.unknown_dims:
            fields[axis] = None
        elif kind.transposed:
            pad = kind.padding[i][0]
            new = transpose_step(current.field, kind.kernel_size[i], kind.stride[i], pad,
                                 kind.dilation[i])  # fmt: skip
            fields[axis] = AxisField(new)
        else:
            new = step(current.field, kind.kernel_size[i], kind.stride[i],
                       (kind.padding[i],), kind.dilation[i])  # fmt: skip
            fields[axis] = AxisField(new)
    return Layout(tuple(dims), tuple(fields))


def _resample(
    kind: sp.Resample, layout: Layout, shape: Sequence[int], out: Sequence[int]
) -> Layout:
    count = len(kind.output_size)
    dims, fields = _resize_leading(layout, out, count)
    for d in range(len(out) - count, len(out)):
        axis = layout.clean_axis(d) if d < len(layout.dims) else None
        if axis is None:
            fields = list(forget(fields, layout.axes_in(d) if d < len(layout.dims) else ()))
            dims[d] = plain_dim(out[d])
            continue
        dims[d] = axis_dim(axis, out[d])
        current = fields[axis]
        if current is None or current.is_global:
            continue
        factor, remainder = divmod(out[d], shape[d])
        if remainder or kind.taps == "other":
            fields[axis] = None
        elif kind.taps == "nearest":
            fields[axis] = AxisField(upsample_step(current.field, factor))
        else:  # linear, half-pixel centres: transposed conv k = 2f - f % 2, p = ceil((f-1)/2)
            kernel = 2 * factor - factor % 2
            new = transpose_step(current.field, kernel, factor, factor // 2)
            fields[axis] = AxisField(new)
    return Layout(tuple(dims), tuple(fields))


def _pointwise(data: list[tuple[TensorRef, Layout]], out: Sequence[int], fields: Fields) -> Layout:
    dims: list[Dim] = []
    unknown: set[int] = set()
    for d_out, size in enumerate(out):
        chosen: Dim | None = None
        for ref, layout in data:
            d = d_out - (len(out) - len(ref.shape))
            if d < 0 or ref.shape[d] != size:  # broadcast along d: no positions from it
                continue
            if not chosen:
                chosen = layout.dims[d]
            elif layout.dims[d] and layout.dims[d] != chosen:  # x + x.transpose(2, 3)
                unknown |= {f.axis for f in (*chosen, *layout.dims[d]) if f.axis is not None}
        dims.append(chosen if chosen is not None else plain_dim(size))
    return Layout(tuple(dims), forget(fields, unknown))


def _mix(
    dims: Sequence[int], exact: bool, layout: Layout, out: Sequence[int], sizes: Sequence[int]
) -> Layout:
    rank = len(layout.dims)
    mixed = {d + rank if d < 0 else d for d in dims}
    fields = list(layout.fields)
    for axis in {a for d in mixed if d < rank for a in layout.axes_in(d)}:
        if fields[axis] is not None and fields[axis].is_global:
            continue
        whole = layout.dims_of(axis) <= mixed  # part of an axis (a window of tokens) is not all
        fields[axis] = global_axis(sizes[axis]) if exact and whole else None
    if len(out) == rank:  # softmax keeps positions in place; keepdim reduces them to size 1
        new_dims = tuple(
            layout.dims[d] if d not in mixed or dim_size(layout.dims[d]) == out[d]
            else plain_dim(out[d])
            for d in range(rank)
        )  # fmt: skip
    elif len(out) == rank - len(mixed):
        new_dims = tuple(layout.dims[d] for d in range(rank) if d not in mixed)
    else:
        return _lost(out, sizes)
    return Layout(new_dims, tuple(fields))


def _matmul(
    kind: sp.MatMul,
    inputs: list[tuple[TensorRef, Layout | None]],
    out: Sequence[int],
    sizes: Sequence[int],
) -> Layout:
    (a_ref, a_lay), (b_ref, b_lay) = inputs[kind.operands[0]], inputs[kind.operands[1]]
    a_dims = a_lay.dims if a_lay else plain_dims(a_ref.shape)
    b_dims = b_lay.dims if b_lay else plain_dims(b_ref.shape)
    if len(a_ref.shape) == 1:
        a_dims = ((), *a_dims)
    if len(b_ref.shape) == 1:
        b_dims = (*b_dims, ())
    fields = merge_fields([lay.fields for lay in (a_lay, b_lay) if lay is not None], sizes)
    result = list(fields)
    operands = ((a_lay, a_dims, len(a_dims) - 1), (b_lay, b_dims, len(b_dims) - 2))
    for lay, dims, contracted in operands:
        if lay is None:
            continue
        probe = Layout(tuple(dims), fields)
        for axis in probe.axes_in(contracted):
            if result[axis] is not None and result[axis].is_global:
                continue
            whole = probe.dims_of(axis) == {contracted}
            result[axis] = global_axis(sizes[axis]) if whole else None
    batch: list[Dim] = []
    batch_rank = max(len(a_dims), len(b_dims)) - 2
    for i in range(batch_rank):
        picked: Dim = ()
        for dims in (a_dims, b_dims):
            j = i - (batch_rank - (len(dims) - 2))
            if j >= 0 and dims[j]:
                picked = dims[j]
                break
        batch.append(picked)
    full = [*batch, a_dims[-2], b_dims[-1]]
    if len(a_ref.shape) == 1:
        full.pop(-2)
    if len(b_ref.shape) == 1:
        full.pop(-1)
    if tuple(dim_size(d) for d in full) != tuple(out):
        return _lost(out, sizes)
    return Layout(tuple(full), tuple(result))


def _split(kind: sp.Split, node: Node, layout: Layout, sizes: Sequence[int]) -> NodeLayouts:
    """Piece k starts where pieces 0..k-1 end along the dim."""
    result, offset = [], 0
    for ref in node.outputs:
        if kind.removes_dim:
            result.append(_slice(sp.Select(kind.dim, offset), layout, ref.shape, sizes))
            offset += 1
        else:
            result.append(_slice(sp.Slice(kind.dim, offset), layout, ref.shape, sizes))
            offset += ref.shape[kind.dim]
    return tuple(result)


def _slice(
    kind: sp.Slice | sp.Select, layout: Layout, out: Sequence[int], sizes: Sequence[int]
) -> Layout:
    gone = isinstance(kind, sp.Select)
    d = kind.dim
    start = kind.index if isinstance(kind, sp.Select) else kind.start
    stride = 1 if isinstance(kind, sp.Select) else kind.step
    dims, fields = list(layout.dims), list(layout.fields)
    axis = layout.clean_axis(d)
    size = 1 if gone else out[d]
    if axis is not None:
        current = fields[axis]
        if current is not None and not current.is_global:
            moved = shift(current.field, start)
            fields[axis] = AxisField(step(moved, 1, stride) if stride != 1 else moved)
        dims[d] = axis_dim(axis, size)
    else:
        fields = list(forget(fields, layout.axes_in(d)))
        dims[d] = plain_dim(size)
    if gone:
        dims.pop(d)
    return Layout(tuple(dims), tuple(fields))


def _concat(kind: sp.Concat, layout: Layout, out: Sequence[int], fields: Fields) -> Layout:
    dims = list(layout.dims)
    if kind.new_dim:
        dims.insert(kind.dim, plain_dim(out[kind.dim]))
        return Layout(tuple(dims), fields)
    axes = sorted(layout.axes_in(kind.dim))
    if not axes:
        dims[kind.dim] = plain_dim(out[kind.dim])
        return Layout(tuple(dims), fields)
    # Joined along space (a class token before the patches): positions shift, so the axes stay
    # in this dim (a later mix over it is still global) but their fields are unknown.
    size = out[kind.dim]
    dims[kind.dim] = tuple(Factor(a, size if i == 0 else 1, False) for i, a in enumerate(axes))
    return Layout(tuple(dims), forget(fields, axes))


def _pad(kind: sp.Pad, layout: Layout, out: Sequence[int]) -> Layout:
    dims, fields = list(layout.dims), list(layout.fields)
    for j, (before, after) in enumerate(kind.pairs):
        d = len(dims) - 1 - j
        axis = layout.clean_axis(d)
        if axis is None:
            fields = list(forget(fields, layout.axes_in(d)))
            dims[d] = plain_dim(out[d])
            continue
        dims[d] = axis_dim(axis, out[d])
        current = fields[axis]
        if current is None or current.is_global:
            continue
        if before >= 0:
            new = step(current.field, 1, 1, ((before, max(after, 0)),))
        else:
            new = shift(current.field, -before)
        fields[axis] = AxisField(new)
    return Layout(tuple(dims), tuple(fields))
