"""The shortcuts that make ``summarize`` faster (issue 15) give exactly what the plain path gives.

- arith steps remembered by exact arguments (``_axis_steps._stepped``) against the formula run
  every time, including arguments that are equal as keys but not as arguments (``1`` vs ``1.0``);
- global fields on a grid built from the cached global field, against a fresh one;
- strides of new meta tensors remembered per (shape, memory format), against PyTorch's;
- ``Layout.shape`` computed once, against the sizes of its dims;
- fields merged with few inputs deduplicated by ``==`` instead of hashing, against the merge
  by hashing it replaced;
- rows and per-call figures built without the frozen dataclasses' ``__init__``, against the
  dataclasses built the ordinary way (equal, frozen, same ``asdict``);
- the totals' sums gathered while the per-call figures are made, call sources of one-node
  rows, kernel sizes read from a module's ``__dict__``, against the general walks;
- ``OpFigures``' written-out ``__init__`` against the dataclass's, op names remembered per op.

The figures of whole models before and after these shortcuts are compared by
``tools/summary_snapshot.py`` (every zoo model, timm's light models and the timm corpus sample).
"""

from __future__ import annotations

import dataclasses
import inspect
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.analysis._axis_steps import _stepped
from cnnkit.analysis._fast_meta import _strides
from cnnkit.analysis._rows import CallFigures, call_sources
from cnnkit.analysis.layout import (
    BROADCAST_ONLY,
    AxisField,
    Factor,
    Layout,
    _distinct,
    _merge_all,
    dim_size,
    global_axis,
    global_on_grid,
    grid_of,
    merge_fields,
)
from cnnkit.analysis.rules import OpFigures
from cnnkit.analysis.spatial import POINTWISE, UNKNOWN
from cnnkit.analysis.summary import LayerRow, _kernel, _layer_row, summarize
from cnnkit.arith.memory import dtype_bytes, training_activation_bytes
from cnnkit.arith.receptive_field import Field, global_field, step, transpose_step
from cnnkit.errors import CnnkitError
from tests.analysis.models import functional_net, tiny_resnet

fields_1d = st.builds(
    lambda rf, jump, start: Field(rf=(rf,), jump=(jump,), start=(start,)),
    st.integers(1, 300),
    st.sampled_from([1, 2, 4, 8, 16, Fraction(1, 2)]),
    st.sampled_from([Fraction(1, 2), 0, 1, Fraction(7, 2), -3]),
)


def _plain(formula, field, *arguments):
    """The formula run every time (no memo), or the error it raises."""
    try:
        return AxisField(formula(field, *arguments))
    except CnnkitError as error:
        return type(error)


def _remembered(formula, field, *arguments):
    try:
        return _stepped(formula, *arguments, field=field)
    except CnnkitError as error:
        return type(error)


@settings(max_examples=150, deadline=None)
@given(
    field=fields_1d,
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    padding=st.integers(0, 3),
    dilation=st.integers(1, 3),
)
def test_remembered_steps_equal_the_formula(field, kernel, stride, padding, dilation):
    for formula, arguments in (
        (step, (kernel, stride, ((padding, padding),), dilation)),
        (transpose_step, (kernel, stride, padding, dilation)),
    ):
        expected = _plain(formula, field, *arguments)
        for _ in range(2):  # the first call fills the memo, the second reads it
            assert _remembered(formula, field, *arguments) == expected


@pytest.mark.parametrize(
    ("formula", "good", "bad"),
    [
        (step, (3, 1, ((1, 1),), 1), (3.0, 1, ((1, 1),), 1)),
        (step, (3, 1, ((1, 1),), 1), (3, 1, ((1.0, 1),), 1)),
        (transpose_step, (3, 2, 1, 1), (3, 2.0, 1, 1)),
    ],
)
def test_an_equal_key_of_another_type_is_not_served_from_the_memo(formula, good, bad):
    field = Field.input(1)
    assert isinstance(_remembered(formula, field, *good), AxisField)
    # 3.0 == 3 and hash(3.0) == hash(3): a memo keyed by value alone would return the good
    # call's field where the formula itself answers differently
    assert _remembered(formula, field, *bad) == _plain(formula, field, *bad)


@given(size=st.integers(1, 4096), grid=st.one_of(st.none(), fields_1d))
def test_global_fields_on_a_grid_equal_fresh_ones(size, grid):
    made = global_on_grid(size, grid)
    if grid is None:
        assert made == AxisField(global_field(size), is_global=True)
    else:
        assert made == AxisField(global_field(size), is_global=True, grid=grid)
    assert made.field == global_axis(size).field == global_field(size)


@given(
    sizes=st.lists(
        st.lists(st.tuples(st.sampled_from([None, 0, 1]), st.integers(1, 9)), max_size=3),
        max_size=5,
    )
)
def test_layout_shape_is_its_dims_sizes(sizes):
    dims = tuple(tuple(Factor(axis, size) for axis, size in dim) for dim in sizes)
    layout = Layout(dims, (None, None))
    expected = tuple(dim_size(factors) for factors in dims)
    assert layout.shape == expected
    assert layout.shape is layout.shape  # computed once, then read from the instance
    assert Layout.shape.__get__(None, Layout) is Layout.__dict__["shape"]


@given(
    numbers=st.lists(st.integers(0, 10**12), min_size=5, max_size=5),
    rf=st.one_of(st.none(), st.tuples(st.integers(1, 500), st.floats(0.5, 99))),
    missing=st.lists(st.sampled_from(["aten.foo", "aten.bar"]), max_size=2).map(tuple),
)
def test_fast_built_rows_equal_the_dataclasses(numbers, rf, missing):
    glob = None if rf is None else (False, True)
    row = {
        "name": "blocks.0.attn",
        "type": "Attention",
        "depth": 2,
        "input_shapes": ((1, 196, 128),),
        "output_shape": (1, 196, 128),
        "params": numbers[0],
        "trainable_params": numbers[1],
        "macs": numbers[2],
        "other_flops": numbers[3],
        "activation_bytes": numbers[4],
        "rf": rf,
        "jump": rf,
        "start": rf,
        "inputs": (-1, 0),
        "unsupported": missing,
        "rf_global": glob,
        "local_rf": rf,
        "local_rf_global": glob,
        "kernel": None,
    }
    fast_row, plain_row = _layer_row(dict(row)), LayerRow(**row)
    assert fast_row == plain_row and dataclasses.asdict(fast_row) == dataclasses.asdict(plain_row)
    assert hash(dataclasses.astuple(fast_row)) == hash(dataclasses.astuple(plain_row))
    assert repr(fast_row) == repr(plain_row)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast_row.name = "x"  # type: ignore[misc]  # frozen, as the dataclass is


@pytest.mark.parametrize("model", [tiny_resnet, functional_net], ids=["resnet", "functional"])
@pytest.mark.parametrize("depth", [None, 1])
def test_summary_figures_and_rows_hold_every_field_as_the_dataclasses(model, depth):
    """Per-call figures and rows are built without their dataclasses' __init__: each holds
    exactly the dataclass's fields (``Cls(**vars(x))`` refuses a missing or extra one), equal to
    the one ``__init__`` builds, and frozen."""
    summary = summarize(model(), (3, 16, 16), depth=depth)
    assert summary.figures and summary.layers
    for fast, cls in [*((f, CallFigures) for f in summary.figures),
                      *((row, LayerRow) for row in summary.layers)]:  # fmt: skip
        plain = cls(**vars(fast))
        assert type(fast) is cls and fast == plain and repr(fast) == repr(plain)
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.params = 1  # type: ignore[misc]  # frozen, as the dataclass is


class _LeafCallingAModule(nn.Module):
    """A leaf (no registered submodule) whose forward calls a module: a row with a call
    inside it, whose figures hold that call's."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "inner", nn.Conv2d(3, 4, 3))  # not registered
        self.scale = nn.Parameter(torch.ones(4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * self.scale


class _WithNestedRow(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.leaf = _LeafCallingAModule()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv(self.leaf(x))).relu()


def test_a_row_with_a_call_inside_holds_its_figures():
    summary = summarize(_WithNestedRow(), (3, 12, 12))
    graph, per_call = summary.graph, summary.figures
    assert graph is not None
    by_name = {call.name: per_call[call.index] for call in graph.calls}
    inner = next(c for c in graph.calls if c.parent == 1)  # the call inside the leaf row
    assert graph.calls[1].name == "leaf" and graph.calls[1].is_row and inner.is_row
    conv_macs = 10 * 10 * 4 * 3 * 9  # N H_out W_out C_out C_in k k
    assert per_call[inner.index].macs == by_name["leaf"].macs == conv_macs
    assert by_name["leaf"].params == 4 + per_call[inner.index].params  # its scale, and the conv's
    assert per_call[0].macs == summary.total.macs == conv_macs + 2 * 10 * 10 * 4 * 4


@pytest.mark.parametrize("model", [tiny_resnet, _WithNestedRow], ids=["resnet", "nested_row"])
def test_summary_sums_are_the_rows_sums(model):
    """Totals gathered while the per-call figures are made, against the rows (seed 000's x2
    training rule over the tensors the rows allocate, as _training_bytes summed it per dtype)."""
    summary = summarize(model(), (3, 16, 16))
    graph, per_call = summary.graph, summary.figures
    assert graph is not None
    rows = [c for c in graph.calls if c.is_row]
    shapes: dict[str, list[tuple[int, ...]]] = {}
    for call in rows:
        own = set(call.nodes)
        for ref in call.outputs:
            made_here = ref.producer is not None and ref.producer[0] in own
            if made_here and graph.nodes[ref.producer[0]].fresh[ref.producer[1]]:
                shapes.setdefault(ref.dtype, []).append(ref.shape)
    training = sum(training_activation_bytes(s, dtype_bytes(dtype)) for dtype, s in shapes.items())
    total = summary.total
    assert total.training_activation_bytes == training > 0
    assert total.activation_bytes == sum(per_call[c.index].activation_bytes for c in rows)
    assert summary.unused_params == total.params - sum(per_call[c.index].params for c in rows)
    last = [c for c in rows if per_call[c.index].spatial][-1]
    assert total.rf_layer == last.name and total.rf == per_call[last.index].rf


@pytest.mark.parametrize("model", [tiny_resnet, functional_net], ids=["resnet", "functional"])
def test_call_sources_of_one_node_rows_are_the_general_walks(model):
    """call_sources skips the set of a row's nodes when it has one: same sources."""
    graph = summarize(model(), (3, 16, 16)).graph
    assert graph is not None
    for call in graph.calls:
        expected = {ref.source_call for ref in call.inputs if ref.is_data}
        for index in call.nodes:
            for ref in graph.nodes[index].data_inputs:
                if ref.producer is not None and ref.producer[0] not in call.nodes:
                    expected.add(ref.source_call)
        assert call_sources(graph, call) == expected - {None, call.index}


@given(
    macs=st.integers(0, 10**12),
    other=st.integers(0, 10**12),
    spatial=st.sampled_from([POINTWISE, UNKNOWN]),
)
def test_op_figures_written_out_init_is_the_dataclass_one(macs, other, spatial):
    """OpFigures' __init__ is written out (fast): the dataclass's parameters and defaults,
    and what it builds is equal, hashed, shown and frozen as a dataclass's."""
    parameters = inspect.signature(OpFigures).parameters.values()
    fields = dataclasses.fields(OpFigures)
    assert [(p.name, p.default) for p in parameters] == [(f.name, f.default) for f in fields]
    made = OpFigures(macs, other_flops=other, spatial=spatial)
    assert (made.macs, made.other_flops, made.spatial) == (macs, other, spatial)
    assert made == OpFigures(macs=macs, other_flops=other, spatial=spatial)
    assert hash(made) == hash(OpFigures(macs, other, spatial))
    assert repr(made) == f"OpFigures(macs={macs}, other_flops={other}, spatial={spatial!r})"
    assert dataclasses.replace(made, macs=1) == OpFigures(1, other, spatial)
    assert OpFigures() == OpFigures(0, 0, POINTWISE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.macs = 1  # type: ignore[misc]  # frozen


def test_node_names_remembered_per_op_are_the_ops_names():
    graph = summarize(functional_net(), (3, 16, 16)).graph
    assert graph is not None
    for node in graph.nodes:
        op = node.op
        name = op.__name__ if isinstance(op, type) else getattr(op, "__name__", op)
        expected = str(name).split(".")[-1]
        assert node.name == expected


class _KernelAsProperty(nn.Module):
    @property
    def kernel_size(self) -> int:
        return 5


class _KernelFromGetattr(nn.Module):
    def __getattr__(self, name: str) -> object:
        return (7, 7) if name == "kernel_size" else super().__getattr__(name)


def test_kernel_read_from_the_instance_is_getattrs():
    """_kernel reads ``kernel_size`` from the instance's __dict__ for classes where getattr
    could find it nowhere else; classes with a class attribute or their own __getattr__ go
    through getattr."""
    with_buffer = nn.Module()
    with_buffer.register_buffer("kernel_size", torch.zeros(2))
    modules = [
        nn.Conv2d(1, 1, 3),
        nn.Conv1d(1, 1, (2,)),
        nn.MaxPool2d((2, 3)),
        nn.AvgPool2d(2),
        nn.ReLU(),
        nn.Linear(2, 2),
        with_buffer,
        _KernelAsProperty(),
        _KernelFromGetattr(),
    ]
    plain: dict[type, bool] = {}
    for module in modules:
        size = getattr(module, "kernel_size", None)
        expected = (size,) if isinstance(size, int) else size
        if not (isinstance(expected, tuple) and all(isinstance(v, int) for v in expected)):
            expected = None
        assert _kernel(module, plain) == _kernel(module) == expected
    assert _kernel(None, plain) is None
    assert not plain[_KernelAsProperty] and not plain[_KernelFromGetattr] and plain[nn.Conv2d]


@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=5).map(tuple),
    channels_last=st.booleans(),
)
def test_remembered_strides_are_pytorchs(shape, channels_last):
    fmt = torch.channels_last if channels_last and len(shape) == 4 else torch.contiguous_format
    expected = torch.empty(shape, device="meta", memory_format=fmt).stride()
    for _ in range(2):
        assert _strides(torch.Size(shape), fmt) == expected


axis_states = st.one_of(
    st.none(),
    st.just(BROADCAST_ONLY),
    st.builds(AxisField, fields_1d),
    st.builds(lambda n, grid: global_on_grid(n, grid), st.sampled_from([7, 14]), fields_1d),
    st.sampled_from([7, 14]).map(global_axis),
)


@given(items=st.lists(st.tuples(axis_states, axis_states), max_size=12))
def test_distinct_is_dict_fromkeys(items):
    # copies: equal fields that are not the same objects, as merges see them
    copies = [
        tuple(dataclasses.replace(v) if isinstance(v, AxisField) else v for v in t) for t in items
    ]
    mixed = [c if k % 2 else t for k, (t, c) in enumerate(zip(items, copies, strict=True))]
    assert _distinct(mixed) == list(dict.fromkeys(mixed))
    assert [id(x) for x in _distinct(mixed)] == [id(x) for x in dict.fromkeys(mixed)]


@given(fields=st.lists(st.tuples(axis_states, axis_states), min_size=1, max_size=4))
def test_merged_fields_equal_a_merge_by_hashing(fields):
    expected = _merge_by_hashing(fields, (7, 14))
    assert merge_fields(fields, (7, 14)) == expected


def _merge_by_hashing(candidates, sizes):
    """merge_fields as it was written before issue 15's second pass (dicts of hashed fields)."""
    if all(f is candidates[0] for f in candidates):
        return candidates[0]
    unique = list(dict.fromkeys(candidates))
    if len(unique) == 1:
        return unique[0]
    merged = []
    for axis, size in enumerate(sizes):
        values = list(dict.fromkeys(f[axis] for f in unique))
        reaching = [v for v in values if v is not BROADCAST_ONLY]
        if not reaching:
            merged.append(BROADCAST_ONLY)
        elif any(v is not None and v.is_global for v in reaching):
            known = {(g.jump, g.start): g for g in map(grid_of, reaching) if g is not None}
            grid = next(iter(known.values())) if len(known) == 1 else None
            merged.append(global_on_grid(size, grid))
        elif any(v is None for v in reaching):
            merged.append(None)
        elif len(reaching) == 1:
            merged.append(reaching[0])
        else:
            merged.append(_merge_all(tuple(v.field for v in reaching)))
    return tuple(merged)
