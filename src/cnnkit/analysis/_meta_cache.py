"""Meta outputs remembered by argument signature, shared by the captures of a process.

(The shortcut kernels of :mod:`cnnkit.analysis._fast_meta` are tried first; this module
covers every other op whose outputs its schema describes.)

Many aten ops' meta kernels are Python reference code (``torch._refs``,
``torch._meta_registrations``) that costs 0.1-2 ms a call (``_safe_softmax``, ``hardtanh_``,
``linalg_vector_norm``, broadcasting ``add``/``mul``), while a transformer calls each op with
the same shapes once per block. On the meta device an op's outputs depend only on its
arguments' metadata (shape, stride, storage offset, dtype) and its non-tensor arguments, so the
first call of each signature runs the real meta kernel (its errors stay PyTorch's own) and
later calls make tensors of the remembered metadata directly.

Only ops whose schema says what their outputs are take part: every return a tensor that is
either fresh (no alias annotation) or an argument written in place (``Tensor(a!)``). Views,
ops that change an argument's metadata in place (``resize_``, ``transpose_``), random ops and
ops whose output shape depends on data are always run. What the first call did is checked
before it is remembered: fresh outputs on storages of their own (``_unsafe_view`` is annotated
as fresh but returns a view), in-place outputs that are the argument itself, written arguments
whose metadata did not change. A signature that fails a check, or holds anything but tensors,
numbers, strings, dtypes, devices, layouts and memory formats, is simply run every time.

What is remembered is shared by every capture in the process (:func:`shared_meta_cache`), as
PyTorch's ``FakeTensorMode`` shares its dispatch cache: the same signature makes the same meta
outputs in any model, so a second ``summarize`` (or a model that repeats another's layers) runs no
meta kernel twice. The store is per default dtype (a factory or integer division without a dtype
makes the default one) and is emptied when it holds :data:`SHARED_LIMIT` signatures. Each capture
has its own :class:`MetaCache` over the shared store: what one capture is about to remember
(``_pending``) is never seen by another thread's.
"""

from __future__ import annotations

from typing import Any

import torch

from cnnkit.analysis._fast_meta import _FAST_BY_ID, META
from cnnkit.analysis._tensors import flat_tensors, storage_key

_TENSOR = torch._C.TensorBase
_PLAIN = {int, str, type(None)}  # keyed by value: no value of another of these types is equal
_TAGGED = {float, bool, torch.dtype, torch.device, torch.layout, torch.memory_format}  # 1.0 == 1
_quiet = torch._C.DisableTorchFunction  # the bookkeeping reads metadata: no torch function mode
_SKIPPED_TAGS = (
    torch.Tag.inplace_view,
    torch.Tag.nondeterministic_seeded,
    torch.Tag.dynamic_output_shape,
    torch.Tag.data_dependent_output,
)

# What a return is: a fresh tensor (None), or the argument at (position, name) written in place.
Returned = tuple[int, str] | None


class _Plan:
    """What an op's schema promises about its outputs (computed once per overload)."""

    __slots__ = ("returns", "written")

    def __init__(self, returns: tuple[Returned, ...], written: tuple[tuple[int, str], ...]):
        self.returns = returns
        self.written = written


_PLANS: dict[int, tuple[Any, _Plan | None]] = {}  # id(overload) -> (overload, plan)


def _plan(func: Any) -> _Plan | None:
    """The op's plan, or ``None`` when its outputs cannot be reproduced from metadata."""
    known = _PLANS.get(id(func))  # by id: an overload's __hash__ is Python code (slow)
    if known is not None:
        return known[1]
    plan = None
    schema = getattr(func, "_schema", None)
    if (
        schema is not None
        and getattr(func, "namespace", None) == "aten"
        and not any(tag in func.tags for tag in _SKIPPED_TAGS)
    ):
        plan = _plan_from(schema)
    _PLANS[id(func)] = (func, plan)  # holding func: its id stays its own
    return plan


def _plan_from(schema: Any) -> _Plan | None:
    written: dict[frozenset[str], tuple[int, str]] = {}
    for position, argument in enumerate(schema.arguments):
        alias = argument.alias_info
        if alias is None:
            continue
        if not alias.is_write:
            return None  # a view of an argument
        written[frozenset(alias.before_set)] = (position, argument.name)
    returns: list[Returned] = []
    if not schema.returns:
        return None
    for result in schema.returns:
        if not isinstance(result.type, torch._C.TensorType):
            return None  # lists, optionals, numbers
        alias = result.alias_info
        if alias is None:
            returns.append(None)
            continue
        source = written.get(frozenset(alias.before_set))
        if not alias.is_write or source is None:
            return None
        returns.append(source)
    return _Plan(tuple(returns), tuple(written.values()))


def _signature(values: Any, key: list[Any]) -> bool:
    """Append the metadata of ``values`` (an op's args or a list among them) to ``key``;
    ``False`` when something in them cannot be keyed."""
    for value in values:
        if isinstance(value, _TENSOR):
            if type(value) is not torch.Tensor or not value.is_meta or value.is_complex():
                return False  # subclasses, real tensors, conjugate bits: run the kernel
            key.append((value.shape, value.stride(), value.storage_offset(), value.dtype))
        elif type(value) in _PLAIN:
            key.append(value)
        elif type(value) in _TAGGED:
            key.append((type(value), value))
        elif type(value) in (list, tuple):
            key.append(list)  # opens a list: no collision with the values around it
            if not _signature(value, key):
                return False
            key.append(len(value))
        else:
            return False  # generators, symbolic sizes, custom objects
    return True


def _metadata(tensor: torch._C.TensorBase) -> tuple[Any, ...]:
    return (tensor.shape, tensor.stride(), tensor.storage_offset(), tensor.dtype)


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], where: tuple[int, str]) -> Any:
    position, name = where
    return args[position] if position < len(args) else kwargs.get(name)


Entries = dict[tuple[Any, ...], tuple[Any, ...] | None]
SHARED_LIMIT = 100_000  # signatures (a few hundred bytes each) before the shared store is emptied
_SHARED: dict[torch.dtype, tuple[Entries, set[int]]] = {}  # default dtype -> (entries, unkeyed)


class MetaCache:
    """op + argument signature -> the outputs' metadata, filled as the capture runs.

    ``entries`` and ``unkeyed`` may be shared stores (:func:`shared_meta_cache`); a new
    ``MetaCache()`` has stores of its own."""

    def __init__(self, entries: Entries | None = None, unkeyed: set[int] | None = None) -> None:
        # key -> per return: (shape, stride, dtype) of a fresh tensor, or (None, where) for the
        # argument written in place; None: this signature is run every time
        self.entries: Entries = {} if entries is None else entries
        self._pending: tuple[Any, tuple[Any, ...], Any] | None = None  # the miss to remember
        # ids of ops whose outputs broke a check once (they are held by _PLANS: ids stay theirs)
        self.unkeyed: set[int] = set() if unkeyed is None else unkeyed

    def outputs(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any | None:
        """The outputs of ``func(*args, **kwargs)`` on meta tensors from a shortcut kernel
        (:mod:`cnnkit.analysis._fast_meta`) or remembered for this signature; ``None``: run
        it with :meth:`kernel`. Called with torch functions disabled (the recorder's quiet
        block), like all metadata reads here."""
        self._pending = None
        fast = _FAST_BY_ID.get(id(func))  # fast_outputs(), inlined: this runs for every op
        if fast is not None:
            out = fast(args, kwargs)
            if out is not None:
                return out
        known = _PLANS.get(id(func))  # _key() and _plan(), inlined for the same reason
        if (known is not None and known[1] is None) or id(func) in self.unkeyed:
            return None
        key = self._key(func, args, kwargs)
        if key is None:
            return None
        specs = self.entries.get(key)
        if specs is not None:
            return _made(specs, args, kwargs)
        if key not in self.entries:  # else seen, and not reproducible
            self._pending = (func, key, _written_metadata(func, args, kwargs))
        return None

    def kernel(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the real kernel after :meth:`outputs` found nothing (outside the quiet block:
        its own torch calls keep the capture's modes) and remember what it made."""
        pending, self._pending = self._pending, None
        out = func(*args, **kwargs)
        if pending is not None and pending[0] is func:
            with _quiet():
                specs = self.entries[pending[1]] = _specs(func, args, kwargs, out, pending[2])
            if specs is None:  # its outputs break the schema's promise (``_unsafe_view``
                # returns a view): run it every time, without making keys for it
                self.unkeyed.add(id(func))
        return out

    def run(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``func(*args, **kwargs)`` on meta tensors, from :meth:`outputs` or :meth:`kernel`."""
        with _quiet():
            out = self.outputs(func, args, kwargs)
        return out if out is not None else self.kernel(func, args, kwargs)

    @staticmethod
    def _key(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
        if _plan(func) is None:
            return None
        key: list[Any] = [func]
        if not _signature(args, key) or (kwargs and not _signature(kwargs.items(), key)):
            return None
        return tuple(key)


def shared_meta_cache() -> MetaCache:
    """A cache for one capture over the process's shared store for the current default dtype
    (emptied first when it holds :data:`SHARED_LIMIT` signatures)."""
    entries, unkeyed = _SHARED.setdefault(torch.get_default_dtype(), ({}, set()))
    if len(entries) >= SHARED_LIMIT:
        entries.clear()
    return MetaCache(entries, unkeyed)


def clear_shared_meta_cache() -> None:
    """Forget every shared signature (benchmarks time a cold start with it)."""
    _SHARED.clear()


def _made(specs: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    outputs = tuple(
        _argument(args, kwargs, spec[1])
        if spec[0] is None
        else torch.empty_strided(spec[0], spec[1], dtype=spec[2], device=META)
        for spec in specs
    )
    return outputs[0] if len(outputs) == 1 else outputs


def _written_metadata(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], ...]:
    """Metadata of the arguments ``func`` writes, taken before it runs."""
    plan = _plan(func)
    assert plan is not None  # a key is only made for planned ops
    return tuple(
        _metadata(t) if isinstance(t := _argument(args, kwargs, where), _TENSOR) else ()
        for where in plan.written
    )


def _specs(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
    out: Any, before: tuple[tuple[Any, ...], ...],
) -> tuple[Any, ...] | None:  # fmt: skip
    """What to remember of the real kernel's outputs, after checking them against the
    schema's promises; ``None`` when they break one (``before``: metadata of the written
    arguments before the call)."""
    plan = _plan(func)
    assert plan is not None
    outputs = (out,) if isinstance(out, _TENSOR) else out
    if not isinstance(outputs, tuple) or len(outputs) != len(plan.returns):
        return None
    for where, metadata in zip(plan.written, before, strict=True):
        tensor = _argument(args, kwargs, where)
        if isinstance(tensor, _TENSOR) and _metadata(tensor) != metadata:
            return None  # the op resized or restrided its argument
    used = {storage_key(t) for t in flat_tensors((args, kwargs))}
    specs: list[Any] = []
    for tensor, returned in zip(outputs, plan.returns, strict=True):
        if not isinstance(tensor, _TENSOR) or type(tensor) is not torch.Tensor:
            return None
        if returned is not None:
            if tensor is not _argument(args, kwargs, returned):
                return None
            specs.append((None, returned))
            continue
        storage = storage_key(tensor)
        if not tensor.is_meta or tensor.storage_offset() != 0 or storage in used:
            return None  # not a fresh meta tensor after all
        used.add(storage)
        specs.append((tensor.shape, tensor.stride(), tensor.dtype))
    return tuple(specs)
