"""From a captured graph, its rules' figures and layouts to per-call rows (used by summary.py).

Every call gets figures: a row call (leaf module, function or op in a non-leaf forward) its own,
a non-leaf module call the sum of the rows inside it, so that ``--depth D`` only selects calls.
Parameters are counted once: a row gets the parameters of its module and those its ops read,
unless an earlier row already counted them (tied weights, a module called twice).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

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


@dataclass(frozen=True)
class FieldFigures:
    """What a layout's fields report, per axis (``None`` entries: unknown).

    ``rf``: the exact field, the whole input extent n where it is global (``rf_global``).
    ``jump``/``start``: the grid of output positions: the exact field's, else (the exact one is
    global or unknown) the local field's, else a global field's (n, n/2).
    ``local_rf``: the local field (n where ``local_rf_global``; 0 where only broadcasts reach).
    """

    rf: Axes
    jump: Axes
    start: Axes
    rf_global: tuple[bool, ...]
    local_rf: Axes
    local_rf_global: tuple[bool, ...]


def field_figures(layout: Layout | None) -> FieldFigures | None:
    """The per-axis figures of a layout (``None``: the tensor does not depend on the input)."""
    if layout is None:
        return None
    rf: list[int | float | None] = []
    jump: list[int | float | None] = []
    start: list[int | float | None] = []
    local_rf: list[int | float | None] = []
    for exact, local in zip(layout.fields, layout.local, strict=True):
        # an exact field is a field or unknown; only local fields can be broadcast-only
        rf.append(fraction_free(exact.field.rf[0]) if isinstance(exact, AxisField) else None)
        finite = next((f.field for f in (exact, local) if _finite(f)), None)
        grid = finite or grid_of(exact) or grid_of(local)  # a global field's kept grid
        if grid is None and isinstance(exact, AxisField):
            grid = exact.field
        if grid is not None:
            jump.append(fraction_free(grid.jump[0]))
            start.append(fraction_free(grid.start[0]))
        else:
            jump.append(None)
            start.append(None)
        if isinstance(local, BroadcastOnly):
            local_rf.append(0)
        else:
            local_rf.append(None if local is None else fraction_free(local.field.rf[0]))
    return FieldFigures(
        rf=tuple(rf),
        jump=tuple(jump),
        start=tuple(start),
        rf_global=tuple(_is_global(f) for f in layout.fields),
        local_rf=tuple(local_rf),
        local_rf_global=tuple(_is_global(f) for f in layout.local),
    )


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


def call_figures(
    graph: Graph, figures: Sequence[OpFigures | None], layouts: Sequence[NodeLayouts]
) -> list[CallFigures]:
    """Figures of every call of ``graph``, in call order."""
    sizes = graph.input_shape[2:]
    counted: set[str] = set()
    own: dict[int, list[int]] = {}  # call -> [params, trainable, macs, other, bytes]
    unsupported: dict[int, list[str]] = {}
    sizes_seen: dict[tuple[tuple[int, ...], str], int] = {}
    nodes = graph.nodes
    for call in graph.calls:
        if not call.is_row:
            continue
        names = list(graph.module_parameters.get(call.index, ()))
        for n in call.nodes:
            names += [ref.parameter for ref in nodes[n].inputs if ref.parameter]
        params = trainable = 0
        for name in dict.fromkeys(names) if names else ():
            if name in counted or name not in graph.parameters:
                continue
            counted.add(name)
            numel, requires_grad, _ = graph.parameters[name]
            params += numel
            trainable += numel if requires_grad else 0
        macs = other = 0
        missing = []
        for n in call.nodes:
            figure = figures[n]
            if figure is None:
                missing.append(nodes[n].name)
            else:
                macs += figure.macs
                other += figure.other_flops
        nbytes = _fresh_output_bytes(call, graph, sizes_seen)
        own[call.index] = [params, trainable, macs, other, nbytes]
        unsupported[call.index] = missing
    totals = {index: list(values) for index, values in own.items()}
    for call in reversed(graph.calls):  # children come after parents: add each into its parent
        if call.parent is None or call.index not in totals:
            continue
        parent = totals.setdefault(call.parent, [0, 0, 0, 0, 0])
        for k, value in enumerate(totals[call.index]):
            parent[k] += value
        below = unsupported.get(call.index)
        if below:
            unsupported.setdefault(call.parent, []).extend(below)
    result = []
    input_rank = len(graph.input_shape)
    # Most calls share their layout's fields with other calls (a module call returns its last
    # row's output; shape ops and activations keep the fields objects): figures are made once
    # per fields object and per layout. The memos hold what their ids name, so ids stay unique.
    by_fields: dict[tuple[int, int], tuple[Any, FieldFigures | None]] = {}
    by_layout: dict[tuple[int, tuple[int, ...]], tuple[Layout | None, bool]] = {}
    for call in graph.calls:
        values = totals.get(call.index)
        params, trainable, macs, other, nbytes = values if values is not None else _NO_FIGURES
        outputs = call.outputs
        ref = None  # the first data output, else the first output
        for candidate in outputs:
            if candidate.is_data:
                ref = candidate
                break
        else:
            ref = outputs[0] if outputs else None
        layout = None if ref is None else layout_of(ref, layouts, sizes)
        key = (id(layout), () if ref is None else ref.shape)
        known = by_layout.get(key)
        if known is None:
            known = by_layout[key] = (
                layout,
                ref is not None and is_spatial(layout, ref, input_rank),
            )
        spatial = known[1]
        fields = None
        if layout is not None:
            field_key = (id(layout.fields), id(layout.local))
            made = by_fields.get(field_key)
            if made is None:
                made = by_fields[field_key] = ((layout.fields, layout.local), field_figures(layout))
            fields = made[1]
        below = unsupported.get(call.index)
        result.append(
            _call_figures(
                params,
                trainable,
                macs,
                other,
                nbytes,
                None if fields is None else fields.rf,
                None if fields is None else fields.jump,
                None if fields is None else fields.start,
                spatial,
                tuple(sorted(set(below))) if below else (),
                None if fields is None else fields.rf_global,
                None if fields is None else fields.local_rf,
                None if fields is None else fields.local_rf_global,
            )
        )
    return result


_CALL_FIELDS = tuple(f.name for f in dataclasses.fields(CallFigures))
_NO_FIGURES = (0, 0, 0, 0, 0)


def _call_figures(*values: Any) -> CallFigures:
    """``CallFigures(*values)`` without the frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field, ~2 us; this runs once per call of the graph)."""
    made = object.__new__(CallFigures)
    made.__dict__.update(zip(_CALL_FIELDS, values, strict=True))
    return made


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
    sources = {ref.source_call for ref in call.inputs if ref.is_data}
    own = set(call.nodes)
    for index in call.nodes:
        for ref in graph.nodes[index].data_inputs:
            if ref.producer is not None and ref.producer[0] not in own:
                sources.add(ref.source_call)
    sources.discard(None)
    sources.discard(call.index)
    return sources  # type: ignore[return-value]  # None was discarded above
