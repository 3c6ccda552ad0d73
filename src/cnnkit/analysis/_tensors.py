"""Tensor bookkeeping for the capture: names of dtypes, storages, and walks
over an op's arguments (helpers of :mod:`cnnkit.analysis._recording`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils._pytree import tree_leaves

_DTYPE_NAMES: dict[torch.dtype, str] = {}


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"`` (cached: called for every tensor seen)."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


def storage_key(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage()._cdata
    except (RuntimeError, NotImplementedError, AttributeError):  # sparse, nested, ...
        return id(tensor)


# isinstance on the C base skips torch.Tensor's Python metaclass; every tensor is both, so
# the checker may read a match as a torch.Tensor
_TENSOR: type[torch.Tensor] = torch._C.TensorBase  # type: ignore[assignment]
_CONTAINERS = (list, tuple, dict)


def map_tensors(value: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    """``value`` with every tensor in its lists, tuples and dicts replaced by ``fn(tensor)``."""
    if isinstance(value, _TENSOR):
        return fn(value)
    if isinstance(value, list | tuple):
        items = [
            fn(v)
            if isinstance(v, _TENSOR)
            else map_tensors(v, fn)
            if isinstance(v, _CONTAINERS)
            else v
            for v in value
        ]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: map_tensors(v, fn) for k, v in value.items()}
    return value


def flat_tensors(value: Any, into: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Every tensor in an aten op's arguments or outputs (lists, tuples, dicts of tensors)."""
    into = [] if into is None else into
    if isinstance(value, _TENSOR):
        into.append(value)
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, _TENSOR):
                into.append(item)
            elif isinstance(item, _CONTAINERS):
                flat_tensors(item, into)
    elif isinstance(value, dict):
        for item in value.values():
            flat_tensors(item, into)
    return into


# Leaves that hold no tensor: the walk below needs no pytree lookup for them.
_SCALARS = {
    int,
    float,
    bool,
    complex,
    str,
    type(None),
    torch.dtype,
    torch.device,
    torch.Size,
    slice,
    type(Ellipsis),
}  # fmt: skip  (pytree keeps slices whole too)


def _plain_walk(value: Any, into: list[torch.Tensor]) -> bool:
    """Collect the tensors of plain lists, tuples and dicts (and scalars); ``False`` on any
    other object (a namedtuple, a registered container: left to the pytree walk)."""
    if isinstance(value, _TENSOR):
        into.append(value)
        return True
    kind = type(value)
    if kind is tuple or kind is list:
        for item in value:  # a loop, not all(generator): this runs for every call's arguments
            if isinstance(item, _TENSOR):
                into.append(item)
            elif type(item) not in _SCALARS and not _plain_walk(item, into):
                return False
        return True
    if kind is dict:  # most are empty kwargs: no generator for them
        return not value or all(_plain_walk(item, into) for item in value.values())
    return kind in _SCALARS


def tensors_in(value: Any) -> list[torch.Tensor]:
    """Every tensor in ``value`` (any pytree: lists, tuples, dicts, registered containers), in
    pytree order."""
    found: list[torch.Tensor] = []
    if _plain_walk(value, found):
        return found  # the usual case, without torch's pytree machinery (~10x slower)
    return [t for t in tree_leaves(value) if isinstance(t, torch.Tensor)]


def fresh(inputs: Any, outputs: Sequence[torch.Tensor]) -> tuple[bool, ...]:
    """Whether each output has a storage of its own (not a view or an input written in place)."""
    used = {storage_key(t) for t in flat_tensors(inputs)}
    return tuple(storage_key(t) not in used for t in outputs)


# id(overload) -> (overload, written positions): by id, as an overload's __hash__ is Python code
_MUTATED_CACHE: dict[int, tuple[Any, tuple[tuple[int, str], ...]]] = {}


def mutated(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """Tensors an op writes in place (its schema marks them ``Tensor(a!)``)."""
    known = _MUTATED_CACHE.get(id(func))
    if known is not None:
        positions = known[1]
    else:
        positions = tuple(
            (i, a.name)
            for i, a in enumerate(func._schema.arguments)
            if a.alias_info is not None and a.alias_info.is_write
        )
        _MUTATED_CACHE[id(func)] = (func, positions)
    written = []
    for position, name in positions:
        value = args[position] if position < len(args) else kwargs.get(name)
        written.extend(flat_tensors(value))
    return written
