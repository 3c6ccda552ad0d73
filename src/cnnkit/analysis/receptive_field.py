"""Receptive field, jump and start of every tensor of a captured graph (capability A5).

Exact over any DAG: a node's field is the union of its inputs' fields (arith's ``merge``), then
the op's step (arith's ``step``, ``transpose_step``, ``upsample_step``, ``shift``), per spatial
axis, in seed 002's convention (rf, jump, start = centre of output 0, input pixel i centred at
i + 1/2). Each rule says how its op moves positions (:mod:`cnnkit.analysis.spatial`); this
module follows the axes through the tensor's dims (:mod:`cnnkit.analysis.layout`). Element-wise
ops keep the field, adds and concatenations merge, a mix over a whole axis (global pooling, a
Linear over the flattened map, softmax over tokens) makes it global, and an op with no closed
form makes it unknown (``None``), never a guess.

Beside it runs the local field: the same propagation, except that an input an op broadcasts
along an axis (an SE gate of shape (N, C, 1, 1) times the map, a pooled context added back or
upsampled from one position, the statistics of a normalisation or softmax) is cut for that
axis. It is the field through the spatially varying paths, which SE networks quote.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cnnkit.analysis import spatial as sp
from cnnkit.analysis._axis_steps import (
    NodeLayouts,
    pad,
    resample,
    slice_,
    split,
    window,
)
from cnnkit.analysis._regrid import moves_pixels, regrid
from cnnkit.analysis._unfold import unfold
from cnnkit.analysis.graph import Graph, Node, TensorRef
from cnnkit.analysis.layout import (
    BROADCAST_ONLY,
    AxisField,
    AxisState,
    BroadcastOnly,
    Dim,
    Factor,
    Fields,
    Layout,
    dim_size,
    forget,
    global_axis,
    global_on_grid,
    grid_of,
    input_layout,
    merge_fields,
    plain_dim,
    plain_dims,
    reduced_dim,
    reshape_dims,
    same_grid,
    with_shape,
)
from cnnkit.arith.receptive_field import Field

# Steps worked out once per propagation, keyed by the op's kind, its operands' dims and shapes.
Plans = dict[tuple[Any, ...], Any]


def propagate(graph: Graph, spatial: Sequence[sp.Spatial]) -> list[NodeLayouts]:
    """The layout (dims and fields) of every output of every node; ``None``: not data."""
    sizes = tuple(graph.input_shape[2:])
    layouts: list[NodeLayouts] = [_input_layouts(graph)]
    plans: Plans = {}  # this propagation's steps that depend on dims and shapes alone
    whole = tuple([global_axis(n) for n in sizes])  # the fields of statistics of the input
    for node in graph.nodes[1:]:
        kind = spatial[node.index]
        outputs = node.outputs
        if isinstance(kind, sp.Constant):
            layouts.append((None,) * len(outputs))
            continue
        lays: list[Layout | None] = []  # the layout of each input (None: not data)
        data: list[tuple[TensorRef, Layout]] = []
        for ref in node.inputs:
            producer = ref.producer
            if producer is None or not ref.is_data:  # most inputs of a transformer's ops are
                lays.append(None)  # weights
                continue
            origin = ref.origin
            if origin is None or origin == producer:  # layout_of's common case, inlined
                layout = layouts[producer[0]][producer[1]]
                if layout is not None and layout.shape != ref.shape:
                    layout = _lost(ref.shape, sizes)
            else:
                layout = layout_of(ref, layouts, sizes)
            lays.append(layout)
            if layout is not None:
                data.append((ref, layout))
        if not data:
            layouts.append((None,) * len(outputs))
            continue
        if isinstance(kind, sp.Split):
            layouts.append(split(kind, node, data[0][1]))
            continue
        first = _apply(kind, node, lays, data, sizes, plans)
        # one output (most ops): what _all_outputs returns, without the call
        layouts.append((first,) if len(outputs) < 2 else _all_outputs(node, first, whole))
    return layouts


def _input_layouts(graph: Graph) -> NodeLayouts:
    """Fields are measured on the first input's grid; another input of the same shape is
    taken as aligned with it pixel for pixel, one of another shape has no known field."""
    first = graph.input_shape
    sizes = tuple(first[2:])
    shapes = graph.input_shapes or (first,)
    return tuple(
        input_layout(shape) if tuple(shape) == tuple(first) else _lost(shape, sizes)
        for shape in shapes
    )


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
        return Layout(base.dims, *merged(parts, sizes))
    if layout is not None and layout.shape != _plain_shape(ref.shape):
        return _lost(ref.shape, sizes)
    return layout


def _plain_shape(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(shape)


def _lost(shape: Sequence[int], sizes: Sequence[int]) -> Layout:
    return Layout(plain_dims(shape), (None,) * len(sizes))


def _all_outputs(node: Node, first: Layout, whole: Fields) -> NodeLayouts:
    """Outputs beyond the first: same layout when they have its shape (indices, masks), else
    statistics of the whole input (a batch norm's saved mean): ``whole``, global on every
    axis."""
    result = [first]
    for ref in node.outputs[1:]:
        if ref.shape == node.outputs[0].shape:
            result.append(first)
        else:
            result.append(Layout(plain_dims(ref.shape), whole))
    return tuple(result)


def merged(layouts: Sequence[Layout], sizes: Sequence[int]) -> tuple[Fields, Fields]:
    """The union of several layouts' exact fields and of their local fields (computed once
    when every layout's local field is its exact one)."""
    if len(layouts) == 1:  # what the merges return for one layout, without the calls
        return layouts[0].fields, layouts[0].local
    fields = merge_fields([x.fields for x in layouts], sizes)
    if all(x.local is x.fields for x in layouts):
        return fields, fields
    return fields, merge_fields([x.local for x in layouts], sizes)


def _apply(
    kind: sp.Spatial,
    node: Node,
    lays: list[Layout | None],
    data: list[tuple[TensorRef, Layout]],
    sizes: Sequence[int],
    plans: Plans | None = None,
) -> Layout:
    plans = {} if plans is None else plans
    out = node.outputs[0].shape if node.outputs else ()  # node.output_shape, inlined
    first = data[0][1]
    # the kinds most nodes have (a transformer's views, element-wise ops, permutes and
    # products) tested first, the two commonest by their exact type: the chain of isinstance
    # tests below costs more than a permute
    kind_type = type(kind)
    if kind_type is sp.Reshape:
        return _reshape(data, out, sizes, plans)
    if kind_type is sp.Pointwise:
        return _pointwise(data, out, sizes, plans)
    if isinstance(kind, sp.Permute) and len(data) == 1:  # as below, without merged()
        return Layout(tuple([first.dims[d] for d in kind.dims]), first.fields, first.local)
    if isinstance(kind, sp.MatMul):
        return _matmul(kind, node.inputs, lays, out, sizes, plans)
    if isinstance(kind, sp.Window):
        return window(kind, first, data[0][0].shape, out, sizes)
    if isinstance(kind, sp.Unfold):
        return unfold(kind, first, data[0][0].shape, out, sizes)
    if isinstance(kind, sp.Resample):
        return resample(kind, first, data[0][0].shape, out)
    if isinstance(kind, sp.Pointwise):
        return _pointwise(data, out, sizes, plans)
    if isinstance(kind, sp.Slice | sp.Select):
        return slice_(kind, first, out)
    if isinstance(kind, sp.Pad):
        return pad(kind, first, out)
    if len(data) == 1:  # what merged() returns for one layout, without the calls
        fields, local = first.fields, first.local
    else:
        fields, local = merged([lay for _, lay in data], sizes)
    if isinstance(kind, sp.Mix):
        return _mix(kind, Layout(first.dims, fields, local), out, sizes, plans)
    if isinstance(kind, sp.Reshape):
        return _reshape(data, out, sizes, plans)
    if isinstance(kind, sp.Permute):
        return Layout(tuple(first.dims[d] for d in kind.dims), fields, local)
    if isinstance(kind, sp.Concat):
        return _concat(kind, [lay for _, lay in data], out, fields, local)
    if isinstance(kind, sp.Global):
        return Layout(plain_dims(out), tuple(global_axis(n) for n in sizes))
    # Unknown: positions may be scrambled along every axis that still varies in an input; an
    # axis no dim holds any more (pooled, selected) has one field for all elements, kept.
    present = {a for _, lay in data for d in range(len(lay.dims)) for a in lay.axes_in(d)}
    dims = plain_dims(out)
    if tuple(out) == first.shape:  # a pooled axis has one position: nothing to scramble (an
        # as_strided_ that restrides a pooled channels-last map keeps naming it)
        dims = tuple(
            old if old and all(f.reduced for f in old) else new
            for old, new in zip(first.dims, dims, strict=True)
        )
    return Layout(dims, forget(fields, present), forget(local, present))


def _reshape(
    data: list[tuple[TensorRef, Layout]], out: Sequence[int], sizes: Sequence[int], plans: Plans
) -> Layout:
    """A view: the dims' factors regrouped as ``out``, space-to-depth and depth-to-space
    recognised (:func:`~cnnkit.analysis._regrid.regrid`)."""
    first = data[0][1]
    # The new dims, and whether a pixel can move, depend on the dims and the shape alone: a
    # transformer's blocks repeat the same views (LeViT: 122 distinct of 496), so each pair is
    # worked out once per propagation.
    key = (sp.Reshape, first.dims, tuple(out))
    plan = plans.get(key)
    if plan is None:
        dims = reshape_dims(first.dims, out)
        plan = plans[key] = (dims, dims is not None and moves_pixels(dims, len(sizes)))
    dims, moves = plan
    if dims is None:
        return _lost(out, sizes)
    if len(data) == 1:  # what merged() returns for one layout, without the calls
        fields, local = first.fields, first.local
    else:
        fields, local = merged([lay for _, lay in data], sizes)
    if moves:
        return regrid(first, Layout(dims, fields, local), len(sizes))
    return with_shape(Layout(dims, fields, local), key[2])  # a view's dims have its sizes


def _positional(dim: Dim) -> bool:
    """The dim holds positions of some axis (not only plain, or reduced, factors)."""
    return bool(_positions_of(dim))


def _positions_of(dim: Dim) -> set[int]:
    return {f.axis for f in dim if f.axis is not None and not f.reduced}


def _finite(value: AxisState) -> bool:
    return isinstance(value, AxisField) and not value.is_global


def _pointwise(
    data: list[tuple[TensorRef, Layout]],
    out: Sequence[int],
    sizes: Sequence[int],
    plans: Plans | None = None,
) -> Layout:
    """Position by position, after broadcasting. An input of size 1 along a dim the output has
    more of is broadcast along it: it still counts for the exact field (at every position), and
    when it sees the whole of an axis that dim holds (a pooled gate), it is cut from that
    axis's local field."""
    if len(data) == 1 and data[0][0].shape == tuple(out):
        return data[0][1]  # one data input, not broadcast (activations, scaling): as it was
    # the output's dims, the broadcasts and the conflicts of positions depend on the inputs'
    # dims and shapes alone (a residual add repeats in every block): worked out once
    key = (sp.Pointwise, tuple(out), *[(ref.shape, layout.dims) for ref, layout in data])
    plans = {} if plans is None else plans
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = _pointwise_plan(data, out)
    dims, arranged, unnamed, stretched = plan
    layouts = [layout for _, layout in data]
    conflicts: set[int] = set(arranged)  # axes whose positions two inputs arrange differently
    local_conflicts: set[int] = set(arranged)
    for k, axes in unnamed:  # positions input k does not name: a conflict where its field is
        layout = layouts[k]  # finite
        conflicts |= {a for a in axes if _finite(layout.fields[a])}
        local_conflicts |= {a for a in axes if _finite(layout.local[a])}
    if not any(stretched):
        fields, local = merged(layouts, sizes)
    else:
        fields = merge_fields([lay.fields for lay in layouts], sizes)
        local = merge_fields(
            [
                tuple(BROADCAST_ONLY if a in cut else lay.local[a] for a in range(len(sizes)))
                for lay, cut in (
                    (lay, _cut_axes(dims, along, lay))
                    for lay, along in zip(layouts, stretched, strict=True)
                )
            ],
            sizes,
        )
    if local is fields and local_conflicts == conflicts:
        fields = local = forget(fields, conflicts) if conflicts else fields
    else:
        fields, local = forget(fields, conflicts), forget(local, local_conflicts)
    return with_shape(Layout(dims, fields, local), tuple(out))  # dims of out's sizes


def _pointwise_plan(
    data: list[tuple[TensorRef, Layout]], out: Sequence[int]
) -> tuple[tuple[Dim, ...], set[int], list[tuple[int, set[int]]], list[set[int]]]:
    """The output's dims; the axes two inputs arrange differently; (k, axes) where input k
    names no position of the chosen dim's axes; the output dims each input is broadcast along."""
    dims: list[Dim] = []
    arranged: set[int] = set()
    unnamed: list[tuple[int, set[int]]] = []
    stretched: list[set[int]] = [set() for _ in data]  # output dims that input k is broadcast along
    for d_out, size in enumerate(out):
        candidates: list[tuple[int, Dim]] = []
        named: set[int] = set()  # axes that a broadcast input's size-1 dim names (a pooled gate)
        for k, (ref, layout) in enumerate(data):
            d = d_out - (len(out) - len(ref.shape))
            if d >= 0 and ref.shape[d] == size:
                candidates.append((k, layout.dims[d]))
            elif size > 1:
                stretched[k].add(d_out)
                if d >= 0:
                    named |= layout.axes_in(d)
        if not candidates:  # every input broadcast along it (expand): the pooled axis, stretched
            dims.append((Factor(next(iter(named)), size),) if len(named) == 1 else plain_dim(size))
            continue
        chosen = next((dim for _, dim in candidates if _positional(dim)), candidates[0][1])
        dims.append(chosen)
        if size == 1:
            continue
        chosen_axes = _positions_of(chosen)
        for k, dim in candidates:
            if dim == chosen:
                continue
            if _positional(dim):  # x + x.transpose(2, 3)
                arranged |= chosen_axes | _positions_of(dim)
            else:
                unnamed.append((k, chosen_axes))
    return tuple(dims), arranged, unnamed, stretched


def _cut_axes(dims: Sequence[Dim], along: set[int], layout: Layout) -> set[int]:
    """The axes an input broadcast along the output dims ``along`` is cut from: those it sees
    whole (its exact field there is global: a pooled gate or statistic, not a one-pixel map)
    and gives no position of: every output dim holding the axis is among ``along``, or the
    input holds no position of the axis at all (an ECA gate, pooled, viewed as a channel
    vector, run through a 1-D conv and expanded back over the map)."""
    if not along:
        return set()
    held = {a for factors in layout.dims for a in _positions_of(factors)}
    cut = set()
    for axis, field in enumerate(layout.fields):
        if not _is_global(field):
            continue
        holding = {d for d, factors in enumerate(dims) if any(f.axis == axis for f in factors)}
        if (holding and holding <= along) or axis not in held:
            cut.add(axis)
    return cut


def _is_global(value: AxisState) -> bool:
    return isinstance(value, AxisField) and value.is_global


def _common_grid(layouts: Sequence[Layout], axis: int) -> Field | None:
    """The grid of ``axis``'s positions that every input agreeing on one has (attention's
    scores have none; its values keep the map's)."""
    grids = [
        grid
        for layout in layouts
        for grid in (grid_of(layout.fields[axis]), grid_of(layout.local[axis]))
        if grid is not None
    ]
    # one grid when they all have its jump and start (the last one, as a dict by
    # (jump, start) would keep), compared without hashing Fractions
    return grids[-1] if grids and all(same_grid(g, grids[0]) for g in grids) else None


def _mixed_away(value: AxisState, result: AxisField | None, keep_local: bool = False) -> AxisState:
    """An axis's field after a mix over all of it (``result``): global and broadcast-only
    fields stay; ``keep_local`` keeps the field (statistics broadcast back, for the local). A
    finite field made global keeps its positions' grid."""
    if keep_local or isinstance(value, BroadcastOnly) or (value is not None and value.is_global):
        return value
    if result is not None and result.is_global and isinstance(value, AxisField):
        return global_on_grid(result.field.rf[0], value.field)  # type: ignore[arg-type]  # a global rf is the input extent: an int
    return result


def _mix(
    kind: sp.Mix, layout: Layout, out: Sequence[int], sizes: Sequence[int], plans: Plans
) -> Layout:
    # which axes are mixed and the new dims depend on the dims and the shape alone: worked
    # out once per propagation (a transformer's norms and softmaxes repeat from block to block)
    key = (kind, layout.dims, tuple(out))
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = _mix_plan(kind, layout, out)
    mixes, keeps, new_dims = plan
    if new_dims is None:
        return _lost(out, sizes)
    fields, local = list(layout.fields), list(layout.local)
    for axis, whole in mixes:
        result = global_axis(sizes[axis]) if kind.exact and whole else None
        fields[axis] = _mixed_away(fields[axis], result)
        local[axis] = _mixed_away(local[axis], result, kind.statistics and keeps)
    return Layout(new_dims, tuple(fields), tuple(local))


def _mix_plan(
    kind: sp.Mix, layout: Layout, out: Sequence[int]
) -> tuple[tuple[tuple[int, bool], ...], bool, tuple[Dim, ...] | None]:
    """The axes a mix over ``kind.dims`` mixes, each with whether it mixes the whole axis;
    whether it keeps the mixed dims' sizes; the output's dims (``None``: not known)."""
    rank = len(layout.dims)
    mixed = {d + rank if d < 0 else d for d in kind.dims}
    keeps = len(out) == rank and all(dim_size(layout.dims[d]) == out[d] for d in mixed if d < rank)
    mixes = []
    for axis in {a for d in mixed if d < rank for a in layout.axes_in(d)}:
        if layout.axis_size(axis) == 1:  # one position: nothing to mix
            continue
        whole = layout.dims_of(axis) <= mixed  # part of an axis (a window of tokens) is not all
        mixes.append((axis, whole))
    new_dims: tuple[Dim, ...] | None
    if len(out) == rank:  # softmax keeps positions in place; keepdim reduces them to size 1
        new_dims = tuple(
            layout.dims[d] if d not in mixed or dim_size(layout.dims[d]) == out[d]
            else reduced_dim(layout.axes_in(d)) if out[d] == 1
            else plain_dim(out[d])
            for d in range(rank)
        )  # fmt: skip
    elif len(out) == rank - len(mixed):
        new_dims = _drop_reduced(layout, mixed)
    else:
        new_dims = None
    return tuple(mixes), keeps, new_dims


def _drop_reduced(layout: Layout, mixed: set[int]) -> tuple[Dim, ...]:
    """The dims left by a reduction that drops ``mixed``: each reduced axis joins the dim
    before it (as a view of a pooled (N, C, 1, 1) map to (N, C) keeps them), so that
    ``mean((2, 3))[:, :, None, None]`` still names the pooled axes."""
    kept = [d for d in range(len(layout.dims)) if d not in mixed]
    if not kept:
        return ()
    result = {d: layout.dims[d] for d in kept}
    for d in sorted(mixed):
        if d >= len(layout.dims) or not layout.axes_in(d):
            continue
        host = max((k for k in kept if k < d), default=kept[0])
        result[host] = (*result[host], *reduced_dim(layout.axes_in(d)))
    return tuple(result[d] for d in kept)


def _matmul(
    kind: sp.MatMul,
    refs: Sequence[TensorRef],
    lays: Sequence[Layout | None],
    out: Sequence[int],
    sizes: Sequence[int],
    plans: Plans | None = None,
) -> Layout:
    a, b = kind.operands
    a_ref, a_lay, b_ref, b_lay = refs[a], lays[a], refs[b], lays[b]
    # Which axes the product sums over (whole or in part) and the output's dims depend on the
    # operands' dims (a weight's: its shape) and shapes alone: worked out once per propagation
    # for the repeated products of a transformer's blocks.
    key = (
        sp.MatMul, a_lay.dims if a_lay else a_ref.shape, b_lay.dims if b_lay else b_ref.shape,
        a_lay is None, b_lay is None, len(a_ref.shape) == 1, len(b_ref.shape) == 1, tuple(out),
    )  # fmt: skip
    plans = {} if plans is None else plans
    plan = plans.get(key)
    if plan is None:
        a_dims = a_lay.dims if a_lay else plain_dims(a_ref.shape)
        b_dims = b_lay.dims if b_lay else plain_dims(b_ref.shape)
        plan = plans[key] = _matmul_plan(a_ref, a_lay, a_dims, b_ref, b_lay, b_dims, out)
    mixes, full = plan
    if full is None:
        return _lost(out, sizes)
    present = [lay for lay in (a_lay, b_lay) if lay is not None]
    fields, local = merged(present, sizes)
    result, result_local = list(fields), list(local)
    for axis, whole in mixes:
        value = global_on_grid(sizes[axis], _common_grid(present, axis)) if whole else None
        result[axis] = _mixed_away(result[axis], value)
        result_local[axis] = _mixed_away(result_local[axis], value)
    return with_shape(Layout(full, tuple(result), tuple(result_local)), key[-1])  # checked


def _matmul_plan(
    a_ref: TensorRef,
    a_lay: Layout | None,
    a_dims: tuple[Dim, ...],
    b_ref: TensorRef,
    b_lay: Layout | None,
    b_dims: tuple[Dim, ...],
    out: Sequence[int],
) -> tuple[tuple[tuple[int, bool], ...], tuple[Dim, ...] | None]:
    """The axes ``a @ b`` sums over, each with whether it sums over the whole axis, in the
    order they are mixed away; and the output's dims (``None``: they do not give ``out``)."""
    if len(a_ref.shape) == 1:
        a_dims = ((), *a_dims)
    if len(b_ref.shape) == 1:
        b_dims = (*b_dims, ())
    mixes: list[tuple[int, bool]] = []
    operands = ((a_lay, a_dims, len(a_dims) - 1), (b_lay, b_dims, len(b_dims) - 2))
    for lay, dims, contracted in operands:
        if lay is None:
            continue
        for axis in {f.axis for f in dims[contracted] if f.axis is not None}:
            if _axis_size(dims, axis) == 1:  # a sum over one position mixes nothing
                continue
            holding = {d for d, factors in enumerate(dims) if any(f.axis == axis for f in factors)}
            mixes.append((axis, holding == {contracted}))
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
    # pooled axes summed over (a Linear on a pooled vector) stay named: still no positions
    pooled = [f for lay, dims, c in operands if lay is not None for f in dims[c] if f.reduced]
    if pooled and full:
        full[-1] = (*full[-1], *pooled)
    if tuple(dim_size(d) for d in full) != tuple(out):
        return tuple(mixes), None
    return tuple(mixes), tuple(full)


def _axis_size(dims: Sequence[Dim], axis: int) -> int:
    """:meth:`Layout.axis_size` of a layout with ``dims``."""
    size = 1
    for factors in dims:
        for f in factors:
            if f.axis == axis:
                size *= f.size
    return size


def _concat(
    kind: sp.Concat, layouts: list[Layout], out: Sequence[int], fields: Fields, local: Fields
) -> Layout:
    # the dims of the input that holds the most positions (an upsampled context may come first)
    layout = max(layouts, key=lambda lay: sum(_positional(dim) for dim in lay.dims))
    dims = list(layout.dims)
    if kind.new_dim:
        dims.insert(kind.dim, plain_dim(out[kind.dim]))
        return Layout(tuple(dims), fields, local)
    axes = sorted(layout.axes_in(kind.dim))
    if not axes:
        dims[kind.dim] = plain_dim(out[kind.dim])
        return Layout(tuple(dims), fields, local)
    # Joined along space (a class token before the patches): positions shift, so the axes stay
    # in this dim (a later mix over it is still global) but their fields are unknown.
    size = out[kind.dim]
    dims[kind.dim] = tuple(Factor(a, size if i == 0 else 1, False) for i, a in enumerate(axes))
    return Layout(tuple(dims), forget(fields, axes), forget(local, axes))
