"""The recording machinery behind :func:`cnnkit.analysis.capture.capture`.

A ``TorchDispatchMode`` records every aten op with its input and output tensors (so
functional ops such as ``x + identity``, ``torch.cat``, ``F.relu`` and inplace ops are seen, and
Python control flow is simply executed); global module pre/post forward hooks tell which module
call each op belongs to; a ``TorchFunctionMode`` names the functions called directly in a
non-leaf module's ``forward`` (``layer1.0.add``). Tensors are mapped to the node that last wrote
them, following inplace ops through their storage (a view written in place updates its base).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakIdKeyDictionary

from cnnkit.analysis._fast_meta import fast_outputs
from cnnkit.analysis.graph import INPUT_CALL, INPUT_NODE, Call, Node, TensorRef
from cnnkit.errors import ShapeError

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


_DTYPE_NAMES: dict[torch.dtype, str] = {}


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"`` (cached: called for every tensor seen)."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


def _storage_key(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage()._cdata
    except (RuntimeError, NotImplementedError, AttributeError):  # sparse, nested, ...
        return id(tensor)


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


class _TensorMap:
    """tensor -> value, by identity. Meta tensors hold no memory, so on meta they are kept alive
    and a plain dict by ``id`` is safe (and fast); on a real device a weak map lets the forward
    pass free its activations."""

    def __init__(self, strong: bool) -> None:
        self.strong = strong
        self.items: Any = {} if strong else WeakIdKeyDictionary()

    def get(self, tensor: torch.Tensor) -> Any:
        if self.strong:
            item = self.items.get(id(tensor))
            return None if item is None else item[1]
        return self.items.get(tensor)

    def __setitem__(self, tensor: torch.Tensor, value: Any) -> None:
        if self.strong:
            self.items[id(tensor)] = (tensor, value)
        else:
            self.items[tensor] = value


_TENSOR = torch._C.TensorBase  # isinstance on the C base skips torch.Tensor's Python metaclass
_CONTAINERS = (list, tuple, dict)


def _map_tensors(value: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    """``value`` with every tensor in its lists, tuples and dicts replaced by ``fn(tensor)``."""
    if isinstance(value, _TENSOR):
        return fn(value)  # type: ignore[arg-type]
    if isinstance(value, list | tuple):
        items = [
            fn(v)
            if isinstance(v, _TENSOR)
            else _map_tensors(v, fn)
            if isinstance(v, _CONTAINERS)
            else v
            for v in value
        ]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


def _flat_tensors(value: Any, into: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Every tensor in an aten op's arguments or outputs (lists, tuples, dicts of tensors)."""
    into = [] if into is None else into
    if isinstance(value, _TENSOR):
        into.append(value)  # type: ignore[arg-type]
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, _TENSOR):
                into.append(item)  # type: ignore[arg-type]
            elif isinstance(item, _CONTAINERS):
                _flat_tensors(item, into)
    elif isinstance(value, dict):
        for item in value.values():
            _flat_tensors(item, into)
    return into


def _tensors(value: Any) -> list[torch.Tensor]:
    """Every tensor in ``value`` (any pytree: lists, tuples, dicts, registered containers)."""
    if isinstance(value, _TENSOR):
        return [value]  # type: ignore[list-item]
    if type(value) is tuple and all(isinstance(v, _TENSOR) for v in value):
        return list(value)  # a module's usual (x,) arguments
    return [t for t in tree_leaves(value) if isinstance(t, _TENSOR)]


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
        self.nodes: list[Node] = []
        self.calls: list[Call] = []
        self.producer = _TensorMap(strong=meta)
        self.owner = _TensorMap(strong=meta)
        self.storage_writes: dict[int, tuple[int, int]] = {}
        self.stack: list[int | None] = []
        self.opaque = 0
        self.event: _Event | None = None
        self.names_used: dict[int, Counter[str]] = {}

    def module_rule(self, module: nn.Module) -> Any:
        kind = type(module)
        if kind not in self._rules_by_type:
            self._rules_by_type[kind] = self._module_rule(module)
        return self._rules_by_type[kind]

    # -- tensors ------------------------------------------------------------------------------
    def ref(self, tensor: torch.Tensor) -> TensorRef:
        producer = origin = self.producer.get(tensor)
        if self.storage_writes:
            write = self.storage_writes.get(_storage_key(tensor))
            if write is not None and (producer is None or write[0] > producer[0]):
                producer = write  # written in place (maybe through a view) after it was made
        is_data = producer is not None and self.nodes[producer[0]].is_data
        source = None
        if producer is not None:
            owner = self.owner.get(tensor)
            if owner is not None and owner[1] == producer:
                source = owner[0]
            else:
                source = self.nodes[producer[0]].call
        return TensorRef(
            shape=tuple(tensor.shape),
            dtype=dtype_name(tensor.dtype),
            producer=producer,
            is_data=is_data,
            parameter=self.parameter_names.get(id(tensor)),
            source_call=source,
            origin=origin,
        )

    def refs(self, value: Any) -> Any:
        return _map_tensors(value, self.ref)

    def tensor_refs(self, value: Any, data_only: bool = True) -> tuple[TensorRef, ...]:
        refs = [self.ref(t) for t in _tensors(value)]
        return tuple(r for r in refs if r.is_data or not data_only)

    def add_input(self, tensor: torch.Tensor) -> None:
        ref = TensorRef(
            tuple(tensor.shape),
            dtype_name(tensor.dtype),
            (INPUT_NODE, 0),
            True,
            source_call=INPUT_CALL,
        )
        node = Node(INPUT_NODE, "input", None, (), {}, (ref,), INPUT_CALL, True, fresh=(True,))
        self.nodes.append(node)
        self.producer[tensor] = (INPUT_NODE, 0)

    # -- calls --------------------------------------------------------------------------------
    def _unique_name(self, parent: int | None, base: str) -> str:
        used = self.names_used.setdefault(-2 if parent is None else parent, Counter())
        count = used[base]
        used[base] += 1
        return base if count == 0 else f"{base}_{count}"

    def _new_call(self, kind: str, short: str, parent: int, inputs: tuple[TensorRef, ...]) -> int:
        owner = self.calls[parent]
        prefix = f"{owner.name}." if owner.depth > 0 else ""
        name = prefix + self._unique_name(parent, short)
        index = len(self.calls)
        self.calls.append(
            Call(index, kind, name, short, owner.depth + 1, parent, True, inputs)  # type: ignore[arg-type]
        )
        return index

    def row_for(self, func: Any, args: Any, kwargs: Any) -> int:
        """The row call that an op dispatched now belongs to (created on first use)."""
        top = self.stack[-1]
        assert top is not None  # opaque modules return before asking
        if self.calls[top].is_row:
            return top
        event = self.event
        if event is not None and event.module_call == top:
            if event.call is None:
                inputs = self.tensor_refs((event.args, event.kwargs))
                event.call = self._new_call("function", function_name(event.func), top, inputs)
            return event.call
        name = str(func._overloadpacket).split(".")[-1]
        return self._new_call("op", name, top, self.tensor_refs((args, kwargs)))

    def describe(self, call_index: int | None) -> str:
        """``features.3 (Conv2d)`` for a module call; ``add in layer1.0 (BasicBlock).forward``
        for a function or op called in a non-leaf module's forward."""
        if call_index is None:
            return "the model"
        call = self.calls[call_index]
        if call.kind == "module":
            return f"{call.name} ({call.type})" if call.depth > 0 else call.type
        parent = self.calls[call.parent] if call.parent is not None else None
        if parent is None:
            return call.type
        where = parent.type if parent.depth == 0 else f"{parent.name} ({parent.type})"
        return f"{call.type} in {where}.forward"

    def innermost(self) -> str:
        for index in reversed(self.stack):
            if index is not None:
                return self.describe(index)
        return "the model"

    # -- hooks --------------------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: Any) -> None:
        with _quiet():
            self._enter(module, args)

    def post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        with _quiet():
            self._exit(module, args, output)

    def _enter(self, module: nn.Module, args: Any) -> None:
        if self.opaque:  # inside a module that a module-keyed rule treats as one leaf
            self.stack.append(None)
            return
        parent = self.stack[-1] if self.stack else None
        parent_call = None if parent is None else self.calls[parent]
        name = self.module_names.get(id(module))
        if name is None:  # a module created or borrowed inside forward
            short = self._unique_name(parent, type(module).__name__.lower())
            name = f"{parent_call.name}.{short}" if parent_call and parent_call.depth else short
        rule = self.module_rule(module)
        is_row = rule is not None or not module._modules
        index = len(self.calls)
        depth = 0 if parent_call is None else parent_call.depth + 1
        call = Call(index, "module", name or type(module).__name__, type(module).__name__, depth,
                    parent, is_row, self.tensor_refs(args), module=module)  # fmt: skip
        self.calls.append(call)
        self.stack.append(index)
        if rule is not None:
            self.opaque += 1

    def _exit(self, module: nn.Module, args: Any, output: Any) -> None:
        index = self.stack.pop()
        if index is None:
            return
        call = self.calls[index]
        if self.opaque and self.module_rule(module) is not None:
            self.opaque -= 1
            self._add_module_node(call, args, output)
        tensors = _tensors(output)
        call.outputs = tuple(self.ref(t) for t in tensors)
        if call.is_row:
            for tensor, ref in zip(tensors, call.outputs, strict=True):
                self.owner[tensor] = (index, ref.producer)

    def _add_module_node(self, call: Call, args: Any, output: Any) -> None:
        index = len(self.nodes)
        tensors = _tensors(output)
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
            index, type(module), None, call.inputs, {}, outputs, call.index, is_data, module
        )
        node.fresh = _fresh(args, tensors)
        self.nodes.append(node)
        call.nodes.append(index)
        for k, tensor in enumerate(tensors):
            self.producer[tensor] = (index, k)

    # -- ops ----------------------------------------------------------------------------------
    def add_node(self, func: Any, args: Any, kwargs: Any, refs: Any, out: Any, call: int) -> None:
        index = len(self.nodes)
        arg_refs, kwarg_refs = refs
        node = Node(index, func._overloadpacket, func, arg_refs, kwarg_refs, (), call, False)
        node.is_data = bool(node.data_inputs)
        tensors = _flat_tensors(out)
        written = _mutated(func, args, kwargs)
        extra = [t for t in written if not any(t is o for o in tensors)]
        outputs = tensors + extra
        node.outputs = tuple(
            TensorRef(
                tuple(t.shape),
                dtype_name(t.dtype),
                (index, k),
                node.is_data,
                source_call=call,
            )
            for k, t in enumerate(outputs)
        )
        node.fresh = _fresh((args, kwargs), outputs)
        self.nodes.append(node)
        self.calls[call].nodes.append(index)
        for k, tensor in enumerate(outputs):
            self.producer[tensor] = (index, k)
        for tensor in written:
            k = next(k for k, t in enumerate(outputs) if t is tensor)
            self.storage_writes[_storage_key(tensor)] = (index, k)
        empty = node.is_data and bool(outputs) and outputs[0].numel() == 0
        if empty and all(ref.numel > 0 for ref in node.data_inputs):
            raise OpFailed(
                ShapeError(f"its output {tuple(outputs[0].shape)} would be empty"),
                self.describe(call),
            )


def _fresh(inputs: Any, outputs: Sequence[torch.Tensor]) -> tuple[bool, ...]:
    """Whether each output has a storage of its own (not a view or an input written in place)."""
    used = {_storage_key(t) for t in _flat_tensors(inputs)}
    return tuple(_storage_key(t) not in used for t in outputs)


_MUTATED_CACHE: dict[Any, tuple[tuple[int, str], ...]] = {}


def _mutated(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """Tensors an op writes in place (its schema marks them ``Tensor(a!)``)."""
    positions = _MUTATED_CACHE.get(func)
    if positions is None:
        positions = tuple(
            (i, a.name)
            for i, a in enumerate(func._schema.arguments)
            if a.alias_info is not None and a.alias_info.is_write
        )
        _MUTATED_CACHE[func] = positions
    written = []
    for position, name in positions:
        value = args[position] if position < len(args) else kwargs.get(name)
        written.extend(_flat_tensors(value))
    return written


# The bookkeeping reads tensor metadata (.shape, .dtype, storages); with torch function modes
# active every such read would go through them, so it runs with torch functions disabled.
_quiet = torch._C.DisableTorchFunction


def _run_op(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], meta: bool) -> Any:
    if meta:
        with _quiet():
            out = fast_outputs(func, args, kwargs)
        if out is not None:
            return out
    return func(*args, **kwargs)


class DispatchRecorder(TorchDispatchMode):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        recorder = self.recorder
        if recorder.opaque or not recorder.stack:
            return _run_op(func, args, kwargs, recorder.meta)
        with _quiet():
            call = recorder.row_for(func, args, kwargs)
            refs = recorder.refs((args, kwargs))  # before the op runs: inplace ops move producers
        try:
            out = _run_op(func, args, kwargs, recorder.meta)
        except Exception as error:
            raise OpFailed(error, recorder.describe(call)) from error
        with _quiet():
            recorder.add_node(func, args, kwargs, refs, out, call)
        return out


class FunctionNamer(TorchFunctionMode):
    """Names the functions called in non-leaf forwards; also makes factory calls without a
    device (``torch.zeros(n)`` in a forward) land on ``device``, as ``torch.device(device)``
    would, without a second mode on every call."""

    def __init__(self, recorder: Recorder, device: torch.device) -> None:
        super().__init__()
        self.recorder = recorder
        self.device = device
        self.constructors = _device_constructors()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
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
        if event.call is not None:
            with _quiet():
                tensors = _tensors(out)
                outputs = tuple(recorder.ref(t) for t in tensors)
                recorder.calls[event.call].outputs = outputs
                for tensor, ref in zip(tensors, outputs, strict=True):
                    recorder.owner[tensor] = (event.call, ref.producer)
        return out
