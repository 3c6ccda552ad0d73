"""What the capture knows of each tensor it has seen, and the references its readers get.

Every op of the forward pass reads its tensor arguments here, so this is the capture's hot path
(``summarize`` on a small transformer records ~1,000 ops). One record per tensor
(:class:`_Seen`) holds the node output that last wrote it, the row call that returned it, its
storage, and the :class:`~cnnkit.analysis.graph.TensorRef` handed to its readers: made on its
first read and reused (references are never modified) until a write or a row's return changes
what it says. An aten op's tensor arguments are found at the positions its schema gives
(cached per overload), instead of a walk over every argument, size lists included.

A tensor is last written by the op that returned it, or by a later op that wrote its storage in
place (``x.view(...).relu_()`` writes ``x``): :meth:`TensorBook.ref` gives the later of the two.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.weak import WeakIdKeyDictionary

from cnnkit.analysis._tensors import _DTYPE_NAMES, dtype_name, map_tensors, storage_key
from cnnkit.analysis.graph import Node, TensorRef

_TENSOR = torch._C.TensorBase

Producer = tuple[int, int]  # (node index, output index)
# an op's (args, kwargs) with references for tensors, the references, those of them that are
# data, the tensors, and the tensors' storage keys
OpRefs = tuple[
    tuple[tuple[Any, ...], dict[str, Any]],
    list[TensorRef],
    list[TensorRef],
    list[torch.Tensor],
    list[int],
]


class _Seen:
    """One tensor's record: ``producer`` (the node output that made or last wrote it),
    ``owner`` (the row call that returned it, with the producer it had then), ``storage``
    (its storage key, once asked), and ``ref``, the reference its readers get, made after the
    ``writes``-th storage write (``None`` until read, and again whenever the others change).
    On the meta device the record also holds the tensor, so that its ``id`` stays its own."""

    __slots__ = ("owner", "producer", "ref", "storage", "tensor", "writes")

    def __init__(
        self,
        tensor: torch.Tensor | None,
        producer: Producer | None = None,
        storage: int | None = None,
        ref: TensorRef | None = None,
        writes: int = -1,
    ) -> None:
        self.tensor = tensor
        self.producer = producer
        self.owner: tuple[int, Producer | None] | None = None
        self.storage = storage
        self.ref = ref
        self.writes = writes


# (position, name, kwarg-only, a list of tensors) of an op's tensor arguments; None: walk them
_Positions = tuple[tuple[int, str, bool, bool], ...] | None
_POSITIONS: dict[int, tuple[Any, _Positions]] = {}  # id(overload) -> (overload, positions)
_TENSOR_TYPES = {
    "Tensor": False,
    "Optional[Tensor]": False,
    "List[Tensor]": True,
    "List[Optional[Tensor]]": True,
}


def _tensor_positions(func: Any) -> _Positions:
    """Where an aten op's schema puts its tensor arguments (cached per overload)."""
    known = _POSITIONS.get(id(func))  # by id: an overload's __hash__ is Python code (slow)
    if known is not None:
        return known[1]
    schema = getattr(func, "_schema", None)
    positions: _Positions = None
    if schema is not None and getattr(func, "namespace", None) == "aten":
        found = []
        for position, argument in enumerate(schema.arguments):
            kind = str(argument.type)
            if kind in _TENSOR_TYPES:
                found.append((position, argument.name, argument.kwarg_only, _TENSOR_TYPES[kind]))
            elif "Tensor" in kind:  # another kind of tensor argument: walk every argument
                break
        else:
            positions = tuple(found)
    _POSITIONS[id(func)] = (func, positions)  # holding func: its id stays its own
    return positions


class TensorBook:
    """The records of one capture's tensors (by identity: a strong map on the meta device,
    where tensors hold no memory; a weak one for a real forward pass, which frees them)."""

    def __init__(self, nodes: list[Node], parameter_names: dict[int, str], strong: bool) -> None:
        self.nodes = nodes
        self.parameter_names = parameter_names
        self.strong = strong
        self._by_id: dict[int, _Seen] = {}
        self._weak: Any = None if strong else WeakIdKeyDictionary()
        self.storage_writes: dict[int, Producer] = {}  # storage key -> its last in-place writer
        self.writes = 0  # in-place writes so far: a reference made before one may be stale

    def record(self, tensor: torch.Tensor) -> _Seen:
        if self.strong:
            seen = self._by_id.get(id(tensor))
            if seen is None:
                seen = self._by_id[id(tensor)] = _Seen(tensor)
            return seen
        seen = self._weak.get(tensor)
        if seen is None:
            seen = self._weak[tensor] = _Seen(None)
        return seen

    def storage(self, tensor: torch.Tensor) -> int:
        seen = self.record(tensor)
        if seen.storage is None:
            seen.storage = storage_key(tensor)
        return seen.storage

    def produced(
        self,
        tensor: torch.Tensor,
        producer: Producer,
        storage: int | None,
    ) -> None:
        """``tensor`` was returned by node output ``producer`` (its storage, if known); its
        readers' reference is made anew on the next :meth:`ref` (``made`` hands over the one it
        has already made)."""
        if self.strong:  # record(), inlined
            seen = self._by_id.get(id(tensor))
            if seen is None:
                self._by_id[id(tensor)] = _Seen(tensor, producer, storage, None, self.writes)
                return
        else:
            seen = self.record(tensor)
        seen.producer, seen.storage, seen.ref, seen.writes = producer, storage, None, self.writes

    def made(
        self,
        outputs: list[torch.Tensor],
        index: int,
        is_data: bool,
        call: int,
        arg_tensors: list[torch.Tensor],
        arg_storages: list[int],
    ) -> tuple[tuple[TensorRef, ...], tuple[bool, ...]]:
        """Node ``index`` of row ``call`` returned ``outputs`` (from the arguments whose tensors
        and storage keys :meth:`op_refs` found): the references to its outputs, and whether
        each is fresh, with a storage of its own (not a view of an argument, nor an argument
        written in place).

        An output's reference (``origin``: itself) is also the one its readers get, until a
        write or a row's return changes what :meth:`ref` would say; unless it is a parameter
        (written in place), whose readers see its name. This runs for every op: what
        ``produced`` and ``storage_key`` do is inlined."""
        refs = []
        fresh = []
        by_id = self._by_id
        strong = self.strong
        writes = self.writes
        for k, tensor in enumerate(outputs):
            try:
                storage = tensor.untyped_storage()._cdata
            except (RuntimeError, NotImplementedError, AttributeError):
                storage = storage_key(tensor)
            is_fresh = storage not in arg_storages
            if is_fresh:
                for arg in arg_tensors:  # a loop, not any(generator): runs for every output
                    if arg is tensor:
                        is_fresh = False
                        break
            fresh.append(is_fresh)
            producer = (index, k)
            dtype = tensor.dtype
            name = _DTYPE_NAMES.get(dtype) or dtype_name(dtype)  # (a dict read: no call)
            ref = TensorRef(tuple(tensor.shape), name, producer, is_data, None, call, producer)
            refs.append(ref)
            shared = None if id(tensor) in self.parameter_names else ref
            seen = by_id.get(id(tensor)) if strong else self.record(tensor)
            if seen is None:
                by_id[id(tensor)] = _Seen(tensor, producer, storage, shared, writes)
            else:
                seen.producer, seen.storage, seen.ref, seen.writes = (
                    producer, storage, shared, writes
                )  # fmt: skip
        return tuple(refs), tuple(fresh)

    def owned(self, tensor: torch.Tensor, call: int, ref: TensorRef) -> None:
        """Row ``call`` returned ``tensor``, whose reference is ``ref`` now."""
        if self.strong:  # record(), inlined: this runs for every output of every row
            seen = self._by_id.get(id(tensor))
            if seen is None:
                seen = self._by_id[id(tensor)] = _Seen(tensor)
        else:
            seen = self.record(tensor)
        seen.owner = (call, ref.producer)
        if ref.source_call != call:  # readers now see it come from ``call``
            seen.ref = None

    def wrote(self, tensor: torch.Tensor, producer: Producer) -> None:
        """Node output ``producer`` wrote ``tensor``'s storage in place."""
        self.storage_writes[self.storage(tensor)] = producer
        self.writes += 1

    def ref(self, tensor: torch.Tensor) -> TensorRef:
        """The reference to ``tensor`` as an op or a call reads it now."""
        if self.strong:  # record(), inlined: this runs for every tensor argument of every op
            seen = self._by_id.get(id(tensor))
            if seen is None:
                seen = self._by_id[id(tensor)] = _Seen(tensor)
        else:
            seen = self.record(tensor)
        if seen.ref is not None and seen.writes == self.writes:
            return seen.ref
        return self._new_ref(tensor, seen)

    def _new_ref(self, tensor: torch.Tensor, seen: _Seen) -> TensorRef:
        producer = origin = seen.producer
        if self.storage_writes:
            write = self.storage_writes.get(self.storage(tensor))
            if write is not None and (producer is None or write[0] > producer[0]):
                producer = write  # written in place (maybe through a view) after it was made
        is_data = producer is not None and self.nodes[producer[0]].is_data
        source = None
        if producer is not None:
            owner = seen.owner
            if owner is not None and owner[1] == producer:
                source = owner[0]
            else:
                source = self.nodes[producer[0]].call
        ref = TensorRef(
            tuple(tensor.shape),
            dtype_name(tensor.dtype),
            producer,
            is_data,
            self.parameter_names.get(id(tensor)),
            source,
            origin,
        )
        seen.ref, seen.writes = ref, self.writes
        return ref

    def _read(self, tensor: torch.Tensor) -> tuple[TensorRef, int]:
        """``tensor``'s reference and storage key (an op's argument)."""
        ref = self.ref(tensor)
        seen = self.record(tensor)
        if seen.storage is None:
            seen.storage = storage_key(tensor)
        return ref, seen.storage

    def op_refs(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> OpRefs:
        """An op's ``(args, kwargs)`` with tensors replaced by references, the references in
        argument order, those of them that are data, the tensors, and their storage keys."""
        known = _POSITIONS.get(id(func))  # _tensor_positions(), inlined: runs for every op
        positions = known[1] if known is not None else _tensor_positions(func)
        if positions is not None:
            found = self._at_positions(positions, args, kwargs)
            if found is not None:
                return found
        return self._walked(args, kwargs)

    def _at_positions(
        self, positions: tuple[tuple[int, str, bool, bool], ...], args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> OpRefs | None:  # fmt: skip
        refs: list[TensorRef] = []
        data: list[TensorRef] = []
        tensors: list[torch.Tensor] = []
        storages: list[int] = []
        new_args = list(args)
        new_kwargs = dict(kwargs)
        # ref() and the storage key, inlined for a tensor argument whose reference is
        # current (most are: each op's output is read by the next op); the rest take _read()
        by_id = self._by_id if self.strong else {}
        writes = self.writes
        for position, name, kwarg_only, is_list in positions:
            if not kwarg_only and position < len(args):
                value = args[position]
            elif name in kwargs:
                value = kwargs[name]
            else:
                continue  # left to its default
            if value is None:
                continue
            if is_list:
                mapped: Any = []
                for item in value:
                    if isinstance(item, _TENSOR):
                        ref, storage = self._read(item)  # type: ignore[arg-type]  # _TENSOR is the C base class of every torch.Tensor
                        tensors.append(item)  # type: ignore[arg-type]  # _TENSOR is the C base class of every torch.Tensor
                        refs.append(ref)
                        storages.append(storage)
                        if ref.is_data:
                            data.append(ref)
                        mapped.append(ref)
                    elif item is None:
                        mapped.append(None)
                    else:
                        return None  # not what the schema said: walk every argument
            elif isinstance(value, _TENSOR):
                seen = by_id.get(id(value))
                if seen is not None and seen.writes == writes and seen.ref is not None:
                    mapped = seen.ref
                    if seen.storage is None:
                        seen.storage = storage_key(value)  # type: ignore[arg-type]  # _TENSOR is the C base class of every torch.Tensor
                    storage = seen.storage
                else:
                    mapped, storage = self._read(value)  # type: ignore[arg-type]  # _TENSOR is the C base class of every torch.Tensor
                tensors.append(value)  # type: ignore[arg-type]  # _TENSOR is the C base class of every torch.Tensor
                refs.append(mapped)
                storages.append(storage)
                if mapped.is_data:
                    data.append(mapped)
            elif type(value) in (int, float, bool, complex):
                continue  # a Python number where the schema takes a tensor (``x * 2.0``)
            else:
                return None
            if not kwarg_only and position < len(args):
                new_args[position] = mapped
            else:
                new_kwargs[name] = mapped
        return (tuple(new_args), new_kwargs), refs, data, tensors, storages

    def _walked(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> OpRefs:
        refs: list[TensorRef] = []
        data: list[TensorRef] = []
        tensors: list[torch.Tensor] = []
        storages: list[int] = []

        def one(tensor: torch.Tensor) -> TensorRef:
            ref, storage = self._read(tensor)
            tensors.append(tensor)
            refs.append(ref)
            storages.append(storage)
            if ref.is_data:
                data.append(ref)
            return ref

        return map_tensors((args, kwargs), one), refs, data, tensors, storages
