"""The captured graph: every aten op of one forward pass, and the calls that contain them.

:func:`cnnkit.analysis.capture.capture` fills these dataclasses; rules read :class:`Node`, the
summary groups nodes by :class:`Call`. Tensors are replaced by :class:`TensorRef` (shape, dtype
and which node produced them), so nothing here holds a tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from torch import nn

# Node index of the model input (the first node of every graph).
INPUT_NODE = 0
# Call index used for "the model input" when a row's edge comes from it.
INPUT_CALL = -1


@dataclass(slots=True)  # made thousands of times per trace: slots, not frozen, for speed
class TensorRef:
    """A tensor seen by the capture: shape, dtype, producer and origin.

    Attributes:
        shape: the tensor's shape.
        dtype: torch dtype name without the ``torch.`` prefix (``"float32"``).
        producer: ``(node index, output index)`` of the op that last wrote it, or ``None`` for a
            tensor that did not come from the forward pass (a parameter, buffer or constant).
        origin: the op that made the tensor; differs from ``producer`` when a view of it was
            written in place afterwards (``x[:, :3] *= 2``).
        is_data: True when its value depends on the model input.
        parameter: the parameter's name when the tensor is a parameter of the model.
        source_call: index of the call (row) the tensor came from, for the diagram's edges.
    """

    shape: tuple[int, ...]
    dtype: str
    producer: tuple[int, int] | None
    is_data: bool
    parameter: str | None = None
    source_call: int | None = None
    origin: tuple[int, int] | None = None

    @property
    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count


@dataclass(slots=True)  # thousands per trace
class Node:
    """One aten op call: its arguments (tensors as :class:`TensorRef`) and outputs.

    ``op`` is the overload packet that rules are keyed by (``torch.ops.aten.convolution``);
    ``overload`` the exact overload, whose schema names the arguments (:meth:`arg`). A node that
    stands for a whole module (a module-keyed rule) has ``op`` = the module class and
    ``module`` = the module instance. ``fresh[k]`` says whether output k has its own storage
    (False for a view or an inplace result). ``inputs`` are the tensor arguments in argument
    order (the recorder has them from its one walk over the arguments), ``data_inputs`` those
    whose values depend on the model input.
    """

    index: int
    op: Any
    overload: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    outputs: tuple[TensorRef, ...]
    call: int
    is_data: bool
    module: nn.Module | None = None
    fresh: tuple[bool, ...] = ()
    inputs: list[TensorRef] = field(default_factory=list)
    data_inputs: list[TensorRef] = field(init=False)

    def __post_init__(self) -> None:
        self.data_inputs = [ref for ref in self.inputs if ref.is_data]

    @property
    def name(self) -> str:
        """The op's name: ``"convolution"``, ``"add_"``, or the module class name."""
        op = self.op
        if isinstance(op, type):
            return op.__name__
        known = _NAMES.get(id(op))  # rules ask it per node: made once per op
        if known is None:
            known = _NAMES[id(op)] = (op, str(getattr(op, "__name__", op)).split(".")[-1])
        return known[1]

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return [ref.shape for ref in self.inputs]

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the first output (``()`` when the op returns no tensor)."""
        return self.outputs[0].shape if self.outputs else ()

    def arg(self, name: str, default: Any = None) -> Any:
        """The argument called ``name`` in the op's schema (positional, keyword or default)."""
        known = _POSITIONS.get(id(self.overload))  # _schema_positions, inlined: ~7 per op
        positions = known[1] if known is not None else _schema_positions(self.overload)
        if positions is None:
            return self.kwargs.get(name, default)
        found = positions.get(name)
        if found is None:
            return default
        position, kwarg_only, has_default, default_value = found
        if not kwarg_only and position < len(self.args):
            return self.args[position]
        if name in self.kwargs:
            return self.kwargs[name]
        return default_value if has_default else default


# id(overload) -> (overload, table): by id, as an overload's __hash__ is Python code (slow)
_POSITIONS: dict[int, tuple[Any, dict[str, tuple[int, bool, bool, Any]] | None]] = {}
# id(op) -> (op, name), as _POSITIONS (an aten op's name is a str of its qualified name)
_NAMES: dict[int, tuple[Any, str]] = {}


def _schema_positions(overload: Any) -> dict[str, tuple[int, bool, bool, Any]] | None:
    """name -> (position, kwarg-only, has default, default) of an op's arguments (cached)."""
    known = _POSITIONS.get(id(overload))
    if known is not None:
        return known[1]
    schema = getattr(overload, "_schema", None)
    table = None
    if schema is not None:
        table = {}
        for position, argument in enumerate(schema.arguments):
            has_default = argument.has_default_value()
            table[argument.name] = (
                position,
                argument.kwarg_only,
                has_default,
                argument.default_value if has_default else None,
            )
    _POSITIONS[id(overload)] = (overload, table)
    return table


CallKind = Literal["module", "function", "op"]


@dataclass
class Call:
    """A module call, or a function/op called directly in a non-leaf module's forward.

    Calls form a tree through ``parent``. A call with ``is_row`` is one row of the summary: a
    leaf module call (or a module with a module-keyed rule), a function called in a non-leaf
    module's ``forward`` (``layer1.0.add``), or an op called there outside any function.
    """

    index: int
    kind: CallKind
    name: str
    type: str
    depth: int
    parent: int | None
    is_row: bool
    inputs: tuple[TensorRef, ...] = ()
    outputs: tuple[TensorRef, ...] = ()
    nodes: list[int] = field(default_factory=list)
    module: nn.Module | None = None


@dataclass
class Graph:
    """The result of one capture.

    Attributes:
        nodes: every recorded op in execution order; ``nodes[0]`` is the model input.
        calls: every call in execution order (the root module call first).
        input_shape: the full input shape, batch included (the first input's, when there are
            several: receptive fields are measured on its grid).
        input_shapes: every input's shape, in call order (outputs of ``nodes[0]``).
        device: ``"meta"`` or the device of the fallback forward pass.
        fallback_reason: why the meta forward failed, when a real forward was used.
        parameters: canonical parameter name -> (numel, trainable, bytes).
        parameter_of_module: module call index -> canonical names of that module's parameters.
    """

    nodes: list[Node]
    calls: list[Call]
    input_shape: tuple[int, ...]
    device: str
    fallback_reason: str | None
    parameters: dict[str, tuple[int, bool, int]]
    buffer_bytes: int
    module_parameters: dict[int, tuple[str, ...]]
    input_shapes: tuple[tuple[int, ...], ...] = ()

    @property
    def spatial_ndim(self) -> int:
        """Number of spatial axes of the input: its rank minus batch and channel."""
        return max(len(self.input_shape) - 2, 0)

    def producer_node(self, ref: TensorRef) -> Node | None:
        return None if ref.producer is None else self.nodes[ref.producer[0]]

    def consumers(self, node: int) -> list[int]:
        """Indices of the nodes that read an output of node ``node`` (``INPUT_NODE``: the
        model input), in execution order. A tensor written in place is read from its last
        writer, as :attr:`TensorRef.producer` says."""
        return [n.index for n in self.nodes[1:] if any(
            ref.producer is not None and ref.producer[0] == node for ref in n.inputs
        )]  # fmt: skip
