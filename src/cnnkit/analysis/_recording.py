"""The recording machinery behind :func:`cnnkit.analysis.capture.capture`.

A ``TorchDispatchMode`` records every aten op with its input and output tensors (so
functional ops such as ``x + identity``, ``torch.cat``, ``F.relu`` and inplace ops are seen, and
Python control flow is simply executed); global module pre/post forward hooks tell which module
call each op belongs to; a ``TorchFunctionMode`` names the functions called directly in a
non-leaf module's ``forward`` (``layer1.0.add``). Tensors are mapped to the node that last wrote
them, following inplace ops through their storage (a view written in place updates its base).
What is known of each tensor (its producer, the row that returned it, the reference its
readers get) is kept by :class:`~cnnkit.analysis._tensor_book.TensorBook`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors
from torch.utils._python_dispatch import TorchDispatchMode

from cnnkit.analysis._meta_cache import shared_meta_cache
from cnnkit.analysis._tensor_book import OpRefs, TensorBook
from cnnkit.analysis._tensors import (
    dtype_name,
    flat_tensors,
    fresh,
    mutated,
    tensors_in,
)
from cnnkit.analysis.graph import INPUT_CALL, INPUT_NODE, Call, Node, TensorRef
from cnnkit.errors import layer_label

ModuleRuleLookup = Callable[[nn.Module], Any]

_BINARY = {"add", "sub", "mul", "truediv", "floordiv", "matmul", "pow", "mod", "and", "or", "xor"}
_INPLACE_ARITHMETIC = {"add", "sub", "mul", "div"}
_RENAMED = {"truediv": "div", "getitem": "getitem", "setitem": "setitem"}


def function_name(func: Any) -> str:
    """A short name for a torch function: ``F.relu`` -> ``relu``, ``Tensor.__mul__`` -> ``mul``;
    ``out += identity`` (``add_``) -> ``add``, like ``out = out + identity``."""
    name = getattr(func, "__name__", None) or str(func)
    if name.endswith("_") and name[:-1] in _INPLACE_ARITHMETIC:  # `out += identity` is add_
        return name[:-1]
    if not (name.startswith("__") and name.endswith("__")):
        return name
    stripped = name[2:-2]
    if stripped[:1] in "ir" and stripped[1:] in _BINARY:
        stripped = stripped[1:]
    return _RENAMED.get(stripped, stripped)


_UNKNOWN_RULE: Any = object()  # a module type whose rule has not been looked up yet


class OpFailed(Exception):
    """An op raised inside the forward pass; carries the layer it ran in."""

    def __init__(self, error: BaseException, layer: str) -> None:
        super().__init__(str(error))
        self.error, self.layer = error, layer


class _Event:
    """A torch function called directly in a non-leaf module's forward."""

    __slots__ = ("args", "call", "func", "kwargs", "module_call")

    def __init__(self, func: Any, args: Any, kwargs: Any, module_call: int) -> None:
        self.func, self.args, self.kwargs, self.module_call = func, args, kwargs, module_call
        self.call: int | None = None


class Recorder:
    """The state shared by the modes and hooks during one forward pass."""

    def __init__(
        self,
        module_names: dict[int, str],
        parameter_names: dict[int, str],
        module_rule: ModuleRuleLookup,
        meta: bool,
    ) -> None:
        self.module_names = module_names
        self.parameter_names = parameter_names
        self._module_rule = module_rule
        self._rules_by_type: dict[type, Any] = {}
        self.meta = meta  # on the meta device: slow meta kernels may be skipped (_fast_meta)
        # ... or run once per argument signature in the process (_meta_cache)
        self.meta_cache = shared_meta_cache()
        self.nodes: list[Node] = []
        self.calls: list[Call] = []
        self.book = TensorBook(self.nodes, parameter_names, strong=meta)
        self.ref = self.book.ref
        self.stack: list[int | None] = []
        self.opaque = 0
        self.event: _Event | None = None
        self.names_used: dict[int, dict[str, int]] = {}
        self._function_names: dict[Any, str] = {}  # torch function -> function_name(it)
        self.first_empty: tuple[str, tuple[int, ...]] | None = None  # (layer, shape)

    def module_rule(self, module: nn.Module) -> Any:
        kind = type(module)
        if kind not in self._rules_by_type:
            self._rules_by_type[kind] = self._module_rule(module)
        return self._rules_by_type[kind]

    # -- tensors ------------------------------------------------------------------------------
    def tensor_refs(self, value: Any, data_only: bool = True) -> tuple[TensorRef, ...]:
        ref = self.ref
        if type(value) is tuple and len(value) == 1 and isinstance(value[0], _TENSOR):
            one = ref(value[0])  # the usual module call: one tensor argument
            return (one,) if one.is_data or not data_only else ()
        refs = []
        for tensor in tensors_in(value):
            found = ref(tensor)
            if found.is_data or not data_only:
                refs.append(found)
        return tuple(refs)

    def returned(self, call: int, value: Any, row: bool) -> tuple[TensorRef, ...]:
        """The references to what call ``call`` returned; a row owns them: its readers see
        them come from it."""
        if isinstance(value, _TENSOR):  # the usual call returns one tensor
            one = self.ref(value)
            if row:
                self.book.owned(value, call, one)
            return (one,)
        tensors = tensors_in(value)
        ref = self.ref
        refs = tuple([ref(tensor) for tensor in tensors])
        if row:  # after every reference is taken: an output may be returned twice
            owned = self.book.owned
            for tensor, found in zip(tensors, refs, strict=True):
                owned(tensor, call, found)
        return refs

    def add_input(self, tensors: list[torch.Tensor] | torch.Tensor) -> None:
        """The model inputs: the outputs of node 0, in call order (one tensor: the input)."""
        if isinstance(tensors, torch.Tensor):
            tensors = [tensors]
        refs = tuple(
            TensorRef(
                tuple(t.shape), dtype_name(t.dtype), (INPUT_NODE, k), True, source_call=INPUT_CALL
            )
            for k, t in enumerate(tensors)
        )
        fresh_outputs = (True,) * len(refs)
        node = Node(INPUT_NODE, "input", None, (), {}, refs, INPUT_CALL, True, fresh=fresh_outputs)
        self.nodes.append(node)
        for k, tensor in enumerate(tensors):
            self.book.produced(tensor, (INPUT_NODE, k), None)

    # -- calls --------------------------------------------------------------------------------
    def _unique_name(self, parent: int | None, base: str) -> str:
        key = -2 if parent is None else parent
        used = self.names_used.get(key)
        if used is None:  # not setdefault(key, {}): that builds a dict every call
            used = self.names_used[key] = {}
        count = used.get(base, 0)  # a dict, not a Counter: its __missing__ is Python code
        used[base] = count + 1
        return base if count == 0 else f"{base}_{count}"

    def _new_call(self, kind: str, short: str, parent: int, inputs: tuple[TensorRef, ...]) -> int:
        owner = self.calls[parent]
        prefix = f"{owner.name}." if owner.depth > 0 else ""
        name = prefix + self._unique_name(parent, short)
        index = len(self.calls)
        self.calls.append(
            Call(index, kind, name, short, owner.depth + 1, parent, True, inputs, (), [], None)  # type: ignore[arg-type]  # the module-call record takes the input refs as recorded; every field given: no defaults to fill
        )
        return index

    def row_for(self, func: Any, data_inputs: list[TensorRef]) -> int:
        """The row call that an op dispatched now belongs to (created on first use);
        ``data_inputs``: the op's tensor arguments that are data."""
        top = self.stack[-1]
        assert top is not None  # opaque modules return before asking
        if self.calls[top].is_row:
            return top
        event = self.event
        if event is not None and event.module_call == top:
            if event.call is None:
                refs = self.tensor_refs((event.args, event.kwargs))
                name = self._function_name(event.func)
                event.call = self._new_call("function", name, top, refs)
            return event.call
        name = _OP_NAMES.get(id(func)) or _op_name(func)
        return self._new_call("op", name, top, tuple(data_inputs))

    def _function_name(self, func: Any) -> str:
        try:
            name = self._function_names.get(func)
        except TypeError:  # an unhashable callable
            return function_name(func)
        if name is None:
            name = self._function_names[func] = function_name(func)
        return name

    def describe(self, call_index: int | None) -> str:
        """``features.3 (Conv2d)`` for a module call; ``add in layer1.0 (BasicBlock).forward``
        for a function or op called in a non-leaf module's forward."""
        if call_index is None:
            return "the model"
        call = self.calls[call_index]
        if call.kind == "module":
            return layer_label(call.name if call.depth > 0 else "", call.type)
        parent = self.calls[call.parent] if call.parent is not None else None
        if parent is None:
            return call.type
        where = layer_label(parent.name if parent.depth > 0 else "", parent.type)
        return f"{call.type} in {where}.forward"

    def innermost(self) -> str:
        for index in reversed(self.stack):
            if index is not None:
                return self.describe(index)
        return "the model"

    # -- hooks --------------------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: Any) -> None:
        if self.opaque:  # inside a module that a module-keyed rule treats as one leaf
            self.stack.append(None)
            return
        with _quiet():
            self._enter(module, args)

    def post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if self.stack[-1] is None:  # the end of a call inside an opaque module
            self.stack.pop()
            return
        with _quiet():
            self._exit(module, args, output)

    def _enter(self, module: nn.Module, args: Any) -> None:
        parent = self.stack[-1] if self.stack else None
        parent_call = None if parent is None else self.calls[parent]
        name = self.module_names.get(id(module))
        if name is None:  # a module created or borrowed inside forward
            short = self._unique_name(parent, type(module).__name__.lower())
            name = f"{parent_call.name}.{short}" if parent_call and parent_call.depth else short
        rule = self._rules_by_type.get(type(module), _UNKNOWN_RULE)  # module_rule(), inlined
        if rule is _UNKNOWN_RULE:
            rule = self.module_rule(module)
        is_row = rule is not None or not module._modules
        index = len(self.calls)
        depth = 0 if parent_call is None else parent_call.depth + 1
        kind = type(module).__name__
        call = Call(index, "module", name or kind, kind, depth, parent, is_row,
                    self.tensor_refs(args), (), [], module)  # fmt: skip
        self.calls.append(call)
        self.stack.append(index)
        if rule is not None:
            self.opaque += 1

    def _exit(self, module: nn.Module, args: Any, output: Any) -> None:
        index = self.stack.pop()
        assert index is not None  # post_hook returns before
        call = self.calls[index]
        if self.opaque and self.module_rule(module) is not None:
            self.opaque -= 1
            self._add_module_node(call, args, output)
        call.outputs = self.returned(index, output, call.is_row)

    def _add_module_node(self, call: Call, args: Any, output: Any) -> None:
        index = len(self.nodes)
        tensors = tensors_in(output)
        is_data = any(ref.is_data for ref in call.inputs)
        outputs = tuple(
            TensorRef(
                tuple(t.shape),
                dtype_name(t.dtype),
                (index, k),
                is_data,
                source_call=call.index,
            )
            for k, t in enumerate(tensors)
        )
        module = call.module
        node = Node(
            index, type(module), None, call.inputs, {}, outputs, call.index, is_data, module,
            fresh(args, tensors), list(call.inputs),
        )  # fmt: skip
        self.nodes.append(node)
        call.nodes.append(index)
        for k, tensor in enumerate(tensors):
            self.book.produced(tensor, (index, k), None)

    # -- ops ----------------------------------------------------------------------------------
    def add_node(
        self, func: Any, args: Any, kwargs: Any, taken: OpRefs, out: Any, call: int
    ) -> None:
        """Record op ``func`` of row ``call``: ``taken`` is what
        :meth:`~cnnkit.analysis._tensor_book.TensorBook.op_refs` found in its arguments before
        it ran (an inplace op moves producers), ``out`` what it returned.

        This runs for every op of the forward pass: one function, few calls (what the helpers
        of :mod:`cnnkit.analysis._tensors` do, inlined for the usual cases)."""
        index = len(self.nodes)
        (arg_refs, kwarg_refs), inputs, data_inputs, arg_tensors, arg_storages = taken
        is_data = bool(data_inputs)
        tensors = [out] if isinstance(out, _TENSOR) else flat_tensors(out)
        _, packet, writes = _OPS.get(id(func)) or _op_facts(func)
        written = mutated(func, args, kwargs) if writes else _NONE
        if written:
            extra = [t for t in written if not any(t is o for o in tensors)]
            outputs = tensors + extra if extra else tensors
        else:
            outputs = tensors
        book = self.book
        output_refs, fresh_outputs = book.made(
            outputs, index, is_data, call, arg_tensors, arg_storages
        )
        node = Node.__new__(Node)  # the dataclass's __init__ and __post_init__, without calls
        node.index, node.op, node.overload = index, packet, func
        node.args, node.kwargs, node.outputs = arg_refs, kwarg_refs, output_refs
        node.call, node.is_data, node.module = call, is_data, None
        node.fresh, node.inputs, node.data_inputs = fresh_outputs, inputs, data_inputs
        self.nodes.append(node)
        self.calls[call].nodes.append(index)
        for tensor in written:
            book.wrote(tensor, next((index, k) for k, t in enumerate(outputs) if t is tensor))
        # An empty intermediate tensor is legal (timm's ``x[:, :0]`` when a ViT has no prefix
        # tokens); the first one made from non-empty data is remembered so that an empty model
        # output, or a later op PyTorch refuses, names where the emptiness began.
        empty = is_data and output_refs and self.first_empty is None and 0 in output_refs[0].shape
        if empty and all(r.numel > 0 for r in data_inputs):
            self.first_empty = (self.describe(call), output_refs[0].shape)


# isinstance on the C base skips torch.Tensor's Python metaclass (every tensor is both)
_TENSOR: type[torch.Tensor] = torch._C.TensorBase  # type: ignore[assignment]
_NONE: list[torch.Tensor] = []
# id(overload) -> (overload, its packet, whether its schema writes an argument): by id, as an
# overload's __hash__ is Python code
_OPS: dict[int, tuple[Any, Any, bool]] = {}


# id(overload) -> its packet's short name (``aten.add.Tensor`` -> ``add``), for a row of an op
# called outside any function; the overload is held in _OPS, so its id stays its own
_OP_NAMES: dict[int, str] = {}


def _op_name(func: Any) -> str:
    _op_facts(func)
    name = _OP_NAMES[id(func)] = str(func._overloadpacket).split(".")[-1]
    return name


def _op_facts(func: Any) -> tuple[Any, Any, bool]:
    known = _OPS.get(id(func))
    if known is None:
        writes = any(
            a.alias_info is not None and a.alias_info.is_write for a in func._schema.arguments
        )
        known = _OPS[id(func)] = (func, func._overloadpacket, writes)
    return known


# The bookkeeping reads tensor metadata (.shape, .dtype, storages); with torch function modes
# active every such read would go through them, so it runs with torch functions disabled.
_quiet = torch._C.DisableTorchFunction
_function_modes_on = torch._C._is_torch_function_mode_enabled  # False inside _quiet()


def _run_op(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], recorder: Recorder) -> Any:
    if recorder.meta:
        return recorder.meta_cache.run(func, args, kwargs)
    return func(*args, **kwargs)


class DispatchRecorder(TorchDispatchMode):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        recorder = self.recorder
        if recorder.opaque or not recorder.stack:
            return _run_op(func, args, kwargs, recorder)
        # An op is called inside a torch function (torch.ops.aten.* included), where torch has
        # taken FunctionNamer off the stack: the bookkeeping's tensor reads need no
        # DisableTorchFunction block (two context-manager calls per op), unless an op reaches
        # here with the mode on (none known); the kernel always runs outside such a block.
        if _function_modes_on():
            with _quiet():
                taken, call, out = self._before(func, args, kwargs)
            if out is None:
                out = self._kernel(func, args, kwargs, call)
            with _quiet():
                recorder.add_node(func, args, kwargs, taken, out, call)
            return out
        taken, call, out = self._before(func, args, kwargs)
        if out is None:
            out = self._kernel(func, args, kwargs, call)
        recorder.add_node(func, args, kwargs, taken, out, call)
        return out

    def _before(self, func: Any, args: Any, kwargs: dict[str, Any]) -> tuple[OpRefs, int, Any]:
        """Before the op runs (an inplace op moves producers): its argument references, the
        row it belongs to, and its outputs when they are made without the kernel (else None)."""
        recorder = self.recorder
        taken = recorder.book.op_refs(func, args, kwargs)
        top = recorder.stack[-1]
        assert top is not None  # None only inside an opaque module
        call = top if recorder.calls[top].is_row else recorder.row_for(func, taken[2])
        out = recorder.meta_cache.outputs(func, args, kwargs) if recorder.meta else None
        return taken, call, out

    def _kernel(self, func: Any, args: Any, kwargs: dict[str, Any], call: int) -> Any:
        recorder = self.recorder
        try:
            if recorder.meta:
                return recorder.meta_cache.kernel(func, args, kwargs)
            return func(*args, **kwargs)
        except Exception as error:
            raise OpFailed(error, recorder.describe(call)) from error


class FunctionNamer(TorchFunctionMode):
    """Names the functions called in non-leaf forwards; also makes factory calls without a
    device (``torch.zeros(n)`` in a forward) land on ``device``, as ``torch.device(device)``
    would, without a second mode on every call."""

    def __init__(self, recorder: Recorder, device: torch.device) -> None:
        super().__init__()
        self.recorder = recorder
        self.device = device
        self.constructors = _device_constructors()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.constructors and kwargs.get("device") is None:
            kwargs["device"] = self.device
        recorder = self.recorder
        top = recorder.stack[-1] if recorder.stack else None
        if top is None or recorder.event is not None or recorder.calls[top].is_row:
            return func(*args, **kwargs)
        event = _Event(func, args, kwargs, top)
        recorder.event = event
        try:
            out = func(*args, **kwargs)
        finally:
            recorder.event = None
        if event.call is not None:  # (torch takes this mode off its stack while it runs)
            recorder.calls[event.call].outputs = recorder.returned(event.call, out, True)
        return out
