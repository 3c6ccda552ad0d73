"""From a captured graph, its rules' figures and layouts to per-call rows (used by summary.py).

Every call gets figures: a row call (leaf module, function or op in a non-leaf forward) its own,
a non-leaf module call the sum of the rows inside it, so that ``--depth D`` only selects calls.
Parameters are counted once: a row gets the parameters of its module and those its ops read,
unless an earlier row already counted them (tied weights, a module called twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeGuard, cast

from cnnkit.analysis.graph import INPUT_CALL, Call, Graph, TensorRef
from cnnkit.analysis.layout import (
    AxisField,
    AxisState,
    BroadcastOnly,
    Layout,
    fraction_free,
    grid_of,
)
from cnnkit.analysis.receptive_field import NodeLayouts, layout_of
from cnnkit.analysis.rules import OpFigures
from cnnkit.arith.memory import activation_bytes, dtype_bytes

Axes = tuple[int | float | None, ...]


@dataclass(frozen=True)
class CallFigures:
    """Figures of one call (before selection by depth)."""

    params: int
    trainable_params: int
    macs: int
    other_flops: int
    activation_bytes: int
    rf: Axes | None
    jump: Axes | None
    start: Axes | None
    spatial: bool
    unsupported: tuple[str, ...]
    rf_global: tuple[bool, ...] | None = None
    local_rf: Axes | None = None
    local_rf_global: tuple[bool, ...] | None = None


# Per spatial axis, in this order: rf, jump, start, rf_global, local_rf, local_rf_global (the
# CallFigures fields a layout gives). ``rf``: the exact field, the whole input extent n where it
# is global (``rf_global``). ``jump``/``start``: the grid of output positions: the exact field's,
# else (the exact one is global or unknown) the local field's, else a global field's (n, n/2).
# ``local_rf``: the local field (n where ``local_rf_global``; 0 where only broadcasts reach).
# ``None`` entries: unknown.
_Columns = tuple[Axes, Axes, Axes, tuple[bool, ...], Axes, tuple[bool, ...]]
_AxisFigures = tuple[int | float | None, int | float | None, int | float | None, bool, Any, bool]


_AxisMemo = dict[tuple[int, ...], tuple[Any, Any, _Columns]]


def field_columns(layout: Layout, memo: _AxisMemo) -> _Columns:
    """The per-axis figures of a layout's fields (see ``_Columns``), one tuple per figure.

    ``memo`` remembers them by the ids of the layout's axis states: a model's layouts hold
    many fields tuples but few AxisField objects (LeViT-128: 176 and 18). It holds the states
    too, so that their ids stay theirs."""
    fields, local = layout.fields, layout.local
    key = (*map(id, fields), *map(id, local))
    known = memo.get(key)
    if known is None:
        axes = [_axis_figures(exact, loc) for exact, loc in zip(fields, local, strict=True)]
        columns = tuple(zip(*axes, strict=True)) if axes else ((),) * 6
        known = memo[key] = (fields, local, cast(_Columns, columns))
    return known[2]


def _axis_figures(exact: AxisState, local: AxisState) -> _AxisFigures:
    """One axis of ``_Columns``: rf, jump, start, rf_global, local_rf, local_rf_global."""
    # an exact field is a field or unknown; only local fields can be broadcast-only
    rf = fraction_free(exact.field.rf[0]) if isinstance(exact, AxisField) else None
    finite = next((f.field for f in (exact, local) if _finite(f)), None)
    grid = finite or grid_of(exact) or grid_of(local)  # a global field's kept grid
    if grid is None and isinstance(exact, AxisField):
        grid = exact.field
    jump = start = None
    if grid is not None:
        jump = fraction_free(grid.jump[0])
        start = fraction_free(grid.start[0])
    local_rf: int | float | None
    if isinstance(local, BroadcastOnly):
        local_rf = 0
    else:
        local_rf = None if local is None else fraction_free(local.field.rf[0])
    return rf, jump, start, _is_global(exact), local_rf, _is_global(local)


def _finite(value: AxisState) -> TypeGuard[AxisField]:
    return isinstance(value, AxisField) and not value.is_global


def _is_global(value: AxisState) -> bool:
    return isinstance(value, AxisField) and value.is_global


def is_spatial(layout: Layout | None, ref: TensorRef, input_rank: int) -> bool:
    """A map over the input's grid: the input's rank, and every spatial axis still has
    positions in some dim (whatever its field: global, unknown or local). A tensor of the
    input's rank whose positions were lost (a view no factor fits: every field unknown, no
    axis named) may be such a map too: it counts, so that the total field is reported unknown
    rather than taken from an earlier map."""
    if layout is None or len(ref.shape) != input_rank or not layout.fields:
        return False
    if layout.holds_every_axis():
        return True
    lost = all(value is None for value in layout.fields) and not any(
        f.axis is not None for factors in layout.dims for f in factors
    )
    return lost and all(size > 1 for size in ref.shape[2:])


def _fresh_output_bytes(
    call: Call, graph: Graph, sizes: dict[tuple[tuple[int, ...], str], int]
) -> int:
    """Bytes of the tensors a row returns that it allocated (not views, not inplace results);
    ``sizes`` remembers the bytes of each (shape, dtype) already seen."""
    total = 0
    nodes = call.nodes
    for ref in call.outputs:
        producer = ref.producer
        if producer is None or producer[0] not in nodes:
            continue
        node = graph.nodes[producer[0]]
        if not node.fresh[producer[1]]:
            continue
        key = (ref.shape, ref.dtype)
        nbytes = sizes.get(key)
        if nbytes is None:
            nbytes = sizes[key] = activation_bytes([ref.shape], dtype_bytes(ref.dtype))
        total += nbytes
    return total


class RowSums(NamedTuple):
    """Sums over the row calls that the totals need, gathered while the figures are made."""

    params: int  # of the rows' figures
    activation_bytes: int  # of the rows' figures
    own_bytes: int  # of the outputs each row allocated itself (not those of calls inside it)
    last_spatial: int | None  # the last row call whose output is spatial (:func:`is_spatial`)


def figures_and_sums(
    graph: Graph, figures: Sequence[OpFigures | None], layouts: Sequence[NodeLayouts]
) -> tuple[list[CallFigures], RowSums]:
    """Figures of every call of ``graph`` in call order, and the sums over its rows.

    Two passes: the rows' own figures in call order (a parameter is counted by the first row
    that reads it), then every call backwards (children come after their parent): a call's
    figures are complete when it is reached, and are added into its parent's.
    """
    calls = graph.calls
    nodes = graph.nodes
    parameters = graph.parameters
    module_parameters = graph.module_parameters
    counted: set[str] = set()
    own: list[tuple[int, int, int, int, int] | None] = [None] * len(calls)
    missing: dict[int, list[str]] = {}  # call -> ops without a rule in it (only where some)
    sizes_seen: dict[tuple[tuple[int, ...], str], int] = {}
    own_bytes = 0
    for call in calls:
        if not call.is_row:
            continue
        index = call.index
        read = module_parameters.get(index, ())
        macs = other = 0
        for n in call.nodes:
            node = nodes[n]
            for arg in node.inputs:
                if arg.parameter:  # few ops read parameters
                    read = (*read, arg.parameter)
            figure = figures[n]
            if figure is None:
                missing.setdefault(index, []).append(node.name)
            else:
                macs += figure.macs
                other += figure.other_flops
        params = trainable = 0
        for name in read:
            if name in counted or name not in parameters:
                continue
            counted.add(name)
            numel, requires_grad, _ = parameters[name]
            params += numel
            if requires_grad:
                trainable += numel
        nbytes = _fresh_output_bytes(call, graph, sizes_seen)
        own_bytes += nbytes
        own[index] = (params, trainable, macs, other, nbytes)

    sizes = graph.input_shape[2:]
    input_rank = len(graph.input_shape)
    # Most calls share their output's layout with another call (a module call returns its last
    # row's output) and its axis states with many (shape ops and activations keep the fields
    # objects): figures are made once per layout (and shape) and per tuple of axis states. The
    # memos hold what their ids name, so ids stay unique.
    by_layout: dict[tuple[int, tuple[int, ...]], tuple[Layout, bool, _Columns]] = {}
    by_axis: _AxisMemo = {}
    inner: dict[int, list[int]] = {}  # call -> sums of the calls inside it met so far
    result: list[CallFigures] = []
    row_params = row_bytes = 0
    last_spatial = None
    for call in reversed(calls):
        index = call.index
        values: Sequence[int] | None = own[index]
        below = inner.pop(index, None)
        if below is not None:  # a row with calls inside it is rare; a module's are its rows
            values = below if values is None else [sum(v) for v in zip(values, below, strict=True)]
        parent = call.parent
        if parent is not None and values is not None:
            into = inner.get(parent)
            if into is None:
                inner[parent] = list(values)
            else:
                into[0] += values[0]
                into[1] += values[1]
                into[2] += values[2]
                into[3] += values[3]
                into[4] += values[4]
        unsupported = missing.get(index)
        if unsupported and parent is not None:
            missing.setdefault(parent, []).extend(unsupported)

        ref = None  # the first data output (one that does not depend on the input has no layout)
        for candidate in call.outputs:
            if candidate.is_data:
                ref = candidate
                break
        if ref is not None and (layout := layout_of(ref, layouts, sizes)) is not None:
            key = (id(layout), ref.shape)
            known = by_layout.get(key)
            if known is None:
                columns = field_columns(layout, by_axis)
                known = by_layout[key] = (layout, is_spatial(layout, ref, input_rank), columns)
            spatial, columns = known[1], known[2]
        else:
            spatial, columns = False, _NO_COLUMNS

        params, trainable, macs, other, nbytes = _NO_FIGURES if values is None else values
        if call.is_row:
            row_params += params
            row_bytes += nbytes
            if spatial and last_spatial is None:
                last_spatial = index
        rf, jump, start, rf_global, local_rf, local_rf_global = columns
        # every field, without the frozen dataclass's __init__ (one object.__setattr__ per
        # field, ~1.5 us of the ~2 it takes): equal objects, still frozen (tests build each
        # call's figures again with CallFigures(**))
        figures_of_call = _new(CallFigures)
        _set(figures_of_call, "__dict__", {
            "params": params,
            "trainable_params": trainable,
            "macs": macs,
            "other_flops": other,
            "activation_bytes": nbytes,
            "rf": rf,
            "jump": jump,
            "start": start,
            "spatial": spatial,
            "unsupported": tuple(sorted(set(unsupported))) if unsupported else (),
            "rf_global": rf_global,
            "local_rf": local_rf,
            "local_rf_global": local_rf_global,
        })  # fmt: skip
        result.append(figures_of_call)
    result.reverse()
    return result, RowSums(row_params, row_bytes, own_bytes, last_spatial)


_NO_COLUMNS: Any = (None, None, None, None, None, None)
_new = object.__new__
_set = object.__setattr__
_NO_FIGURES = (0, 0, 0, 0, 0)


def representative(graph: Graph, call_index: int, depth: int | None) -> int:
    """The call shown for ``call_index`` at ``depth``: itself, or its ancestor at ``depth``."""
    if call_index == INPUT_CALL or depth is None:
        return call_index
    call = graph.calls[call_index]
    while call.depth > depth and call.parent is not None:
        call = graph.calls[call.parent]
    return call.index


def selected_calls(graph: Graph, depth: int | None) -> list[Call]:
    """The calls that are rows at ``depth``: row calls no deeper than it, and module calls at
    exactly ``depth`` that contain rows (``None``: every row call)."""
    if depth is None:
        return [c for c in graph.calls if c.is_row]
    return [c for c in graph.calls if (c.is_row and c.depth <= depth) or c.depth == depth]


def call_sources(graph: Graph, call: Call) -> set[int]:
    """Calls whose outputs ``call`` reads (``INPUT_CALL`` for the model input), for edges."""
    sources = set()
    for ref in call.inputs:  # a loop: one or two inputs, no comprehension's frame
        if ref.is_data:
            sources.add(ref.source_call)
    nodes = call.nodes
    if len(nodes) == 1:  # most rows: no set of their nodes
        only = nodes[0]
        for ref in graph.nodes[only].data_inputs:
            if ref.producer is not None and ref.producer[0] != only:
                sources.add(ref.source_call)
    else:
        own = set(nodes)
        for index in nodes:
            for ref in graph.nodes[index].data_inputs:
                if ref.producer is not None and ref.producer[0] not in own:
                    sources.add(ref.source_call)
    sources.discard(None)
    sources.discard(call.index)
    return sources  # type: ignore[return-value]  # None was discarded above
