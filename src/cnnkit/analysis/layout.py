"""Which dimension of a tensor holds which spatial axis of the input, and each axis's fields.

A receptive field is a property of the input's spatial axes (H, W), not of tensor dims: after
``permute(0, 2, 3, 1)`` (ConvNeXt's NHWC blocks) H is dim 1; after ``view(N * H * W, C)`` (a
Linear applied per position) H and W live inside dim 0 and a matrix product over dim 1 leaves
them alone; after ``flatten(1)`` they share dim 1 with the channels and a Linear over it mixes
every position. So each dim is described by its factors in row-major order: (axis or ``None``,
size, clean, reduced), where a clean factor is a whole axis in order, a view that cuts an axis
in pieces leaves unclean factors, and a reduced factor is an axis whose positions a reduction
over the whole axis merged into one (global pooling, ``mean(keepdim=True)``): the dim still
names the axis, so that a later broadcast of it is known to stretch that axis. Size-1 factors
of no axis are dropped; a spatial axis reduced to size 1 by a window keeps its factor (later
layers still step its field, padding counts).

Each layout carries two fields per axis: ``fields``, the exact receptive field, and ``local``,
the field through spatially varying paths only, where every input an op broadcasts along the
axis is cut (:data:`BROADCAST_ONLY` marks a tensor that only such inputs reach).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

from cnnkit.arith.receptive_field import Field, global_field, merge
from cnnkit.errors import ShapeError


class Factor(NamedTuple):
    """A piece of a tensor dim: ``size`` positions along input ``axis`` (``None``: not spatial).

    A named tuple, not a dataclass: dims are compared and hashed (views, matrix products and
    element-wise ops repeat from block to block), and a tuple's ``==`` and ``hash`` run in C,
    several times faster than a dataclass's generated methods."""

    axis: int | None
    size: int
    clean: bool = True
    reduced: bool = False


Dim = tuple[Factor, ...]


@dataclass(frozen=True, init=False)
class AxisField:
    """The field of one spatial axis (a 1-D :class:`~cnnkit.arith.receptive_field.Field`)."""

    field: Field
    is_global: bool
    # A global field's map grid (its positions' jump and start) where it is known: attention
    # makes every position see everything, but the positions stay where they were.
    grid: Field | None

    def __init__(self, field: Field, is_global: bool = False, grid: Field | None = None):
        # written into __dict__, as Layout's (attention makes a global field per product)
        values = self.__dict__
        values["field"], values["is_global"], values["grid"] = field, is_global, grid


class BroadcastOnly:
    """A local field with no path: every path from the input to the tensor along this axis
    passes through a broadcast (an SE gate expanded over the map, an upsampled 1x1 context)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "BROADCAST_ONLY"


BROADCAST_ONLY = BroadcastOnly()

# Per axis: the field, or None when no closed form follows it (reported as unknown); local
# fields may also be BROADCAST_ONLY.
AxisState = AxisField | BroadcastOnly | None
Fields = tuple[AxisState, ...]


class _computed_once:  # used as a decorator, like functools.cached_property
    """``functools.cached_property`` without its lock (Python 3.11 takes one on every first
    read, and a capture reads the shape of ~1,000 new layouts): computed on the first read,
    then found in the instance's ``__dict__``, which a non-data descriptor does not shadow."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        self.compute = compute
        self.name = compute.__name__

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


@dataclass(frozen=True, init=False)
class Layout:
    """A data tensor's dims (their factors), the exact field of every input spatial axis and
    its local field (``None``: the same as the exact one)."""

    dims: tuple[Dim, ...]
    fields: Fields
    local: Fields

    def __init__(self, dims: tuple[Dim, ...], fields: Fields, local: Fields | None = None):
        # written into __dict__, as Factor's (a layout per node)
        values = self.__dict__
        values["dims"], values["fields"] = dims, fields
        values["local"] = fields if local is None else local

    def axes_in(self, dim: int) -> set[int]:
        """Spatial axes with a factor in ``dim``."""
        return {f.axis for f in self.dims[dim] if f.axis is not None}

    def clean_axis(self, dim: int) -> int | None:
        """The axis when ``dim`` is one whole axis (so windows can step its field); size-1
        factors of other axes beside it do not move along the dim."""
        factors = self.dims[dim]
        if not factors or any(f.axis is None for f in factors):
            return None
        moving = [f for f in factors if f.size != 1]
        if len(moving) > 1 or (not moving and len(factors) > 1):
            return None
        main = moving[0] if moving else factors[0]
        return main.axis if main.clean and not main.reduced else None

    def dims_of(self, axis: int) -> set[int]:
        """The dims holding a factor of ``axis``."""
        return {d for d, factors in enumerate(self.dims) if any(f.axis == axis for f in factors)}

    def holds_every_axis(self) -> bool:
        """Every input spatial axis still has positions in some dim (not reduced, not mixed
        into the features): the tensor is a map over the input's grid."""
        held = {f.axis for factors in self.dims for f in factors if not f.reduced}
        return all(axis in held for axis in range(len(self.fields)))

    def axis_size(self, axis: int) -> int:
        """How many positions of ``axis`` the tensor holds (1 once reduced or pooled to 1)."""
        size = 1
        for factors in self.dims:
            for f in factors:
                if f.axis == axis:
                    size *= f.size
        return size

    @_computed_once
    def shape(self) -> tuple[int, ...]:
        sizes = []
        for factors in self.dims:  # dim_size, inlined: every layout's shape is read
            size = 1
            for factor in factors:
                size *= factor.size
            sizes.append(size)
        return tuple(sizes)


def with_shape(layout: Layout, shape: tuple[int, ...]) -> Layout:
    """``layout`` with its shape already known: ``shape``, which the caller built its dims to
    have (a view's dims are cut to the view's sizes), so that the first read need not sum the
    factors again."""
    layout.__dict__["shape"] = shape
    return layout


def dim_size(factors: Dim) -> int:
    size = 1
    for factor in factors:
        size *= factor.size
    return size


@functools.lru_cache(maxsize=1024)  # one object per size: dims are immutable, and most
def plain_dim(size: int) -> Dim:  # layouts hold a few plain dims (batch, channels, heads)
    """A dim that holds no spatial axis."""
    return () if size == 1 else (Factor(None, size),)


def axis_dim(axis: int, size: int, clean: bool = True) -> Dim:
    """A dim that is (a piece of) ``axis`` (size 1 included: a 1x1 map is still a map)."""
    return (Factor(axis, size, clean),)


def reduced_dim(axes: Iterable[int]) -> Dim:
    """A size-1 dim left by a reduction over the whole of ``axes`` (global pooling)."""
    return tuple(Factor(axis, 1, True, True) for axis in sorted(axes))


def plain_dims(shape: Sequence[int]) -> tuple[Dim, ...]:
    return tuple([plain_dim(size) for size in shape])


def input_layout(shape: Sequence[int]) -> Layout:
    """The model input (N, C, *spatial): axis i is dim 2 + i, with the input's field."""
    spatial = tuple(shape[2:])
    dims = (*plain_dims(shape[:2]), *(axis_dim(a, n) for a, n in enumerate(spatial)))
    return Layout(dims, tuple(AxisField(Field.input(1)) for _ in spatial))


@functools.lru_cache(maxsize=256)
def global_axis(size: int) -> AxisField:
    """The field of an axis that an output sees whole (arith's global field)."""
    return AxisField(global_field(size), is_global=True)


def grid_of(value: AxisState) -> Field | None:
    """The grid of a field's positions: a finite field's own, a global one's kept grid."""
    if not isinstance(value, AxisField):
        return None
    return value.grid if value.is_global else value.field


def global_on_grid(size: int, grid: Field | None) -> AxisField:
    """A global field whose positions keep ``grid`` (``None``: not known)."""
    if grid is None:
        return global_axis(size)
    # the cached global field's Field: building one validates it (slow, and it is the same)
    return AxisField(global_axis(size).field, is_global=True, grid=grid)


def merge_fields(all_fields: Iterable[Fields], sizes: Sequence[int]) -> Fields:
    """The union of several inputs' fields, per axis: broadcast-only inputs (local fields)
    contribute nothing unless all are; then global wins (on the one grid its inputs know, if
    they know one), then unknown, else arith's ``merge`` (inputs whose jumps differ have no
    single field: unknown)."""
    candidates = list(all_fields)
    if candidates and all(fields is candidates[0] for fields in candidates):
        return candidates[0]  # one input (most ops), or one object: no need to hash the fields
    unique = _distinct(candidates)  # a concatenation often repeats the same fields
    if len(unique) == 1:
        return unique[0]
    merged: list[AxisState] = []
    for axis, size in enumerate(sizes):
        values = _distinct([fields[axis] for fields in unique])
        reaching = [v for v in values if v is not BROADCAST_ONLY]
        if not reaching:
            merged.append(BROADCAST_ONLY)
        elif any(v is not None and v.is_global for v in reaching):
            # a global input whose grid is not known (one position spread: a gate, halo
            # attention's one window) takes the grid of the positions it is joined with
            grids = [g for g in map(grid_of, reaching) if g is not None]
            # one grid when they all have its jump and start (the last one, as a dict by
            # (jump, start) would keep), compared without hashing Fractions
            grid = grids[-1] if grids and all(same_grid(g, grids[0]) for g in grids) else None
            merged.append(global_on_grid(size, grid))
        elif any(v is None for v in reaching):
            merged.append(None)
        elif len(reaching) == 1:
            merged.append(reaching[0])
        else:
            merged.append(_merge_all(tuple(v.field for v in reaching)))
    return tuple(merged)


def same_grid(a: Field, b: Field) -> bool:
    """Two grids with the same jump and start (the same object, most often)."""
    return a is b or (a.jump == b.jump and a.start == b.start)


def _distinct(items: list[Any]) -> list[Any]:
    """``list(dict.fromkeys(items))`` (first occurrences, in order) for hashable ``items``;
    a few are compared by identity and ``==`` instead: hashing fields hashes each Fraction in
    Python, and merges mostly see two or three inputs, often the very same objects."""
    if len(items) > 8:
        return list(dict.fromkeys(items))
    unique: list[Any] = []
    for item in items:
        for seen in unique:
            if item is seen or item == seen:
                break
        else:
            unique.append(item)
    return unique


def _merge_all(fields: tuple[Field, ...]) -> AxisField | None:
    """Fold arith's merge pairwise (the union is associative): a DenseNet concatenation merges
    the previous one's fields plus one, so the cached pairs make it linear, not quadratic."""
    result: Field | None = fields[0]
    for other in fields[1:]:
        result = _merge_pair(result, other) if result is not None else None
    return None if result is None else AxisField(result)


@functools.lru_cache(maxsize=4096)
def _merge_pair(first: Field, second: Field) -> Field | None:
    try:
        return merge([first, second])
    except ShapeError:  # different jumps: no single field
        return None


def reshape_dims(dims: Sequence[Dim], shape: Sequence[int]) -> tuple[Dim, ...] | None:
    """The factors of a view of a tensor with ``dims`` as ``shape`` (``None`` if they cannot be
    matched, e.g. a view that regroups sizes across factors in a way no factor boundary fits).

    Factors are consumed in row-major order; a factor larger than the output dim it starts is
    cut in pieces (unclean), so a later view that joins the pieces back cannot restore it. A
    size-1 spatial factor goes to the next size-1 dim, else joins its neighbours (``flatten``
    of a 1x1 map puts H and W in the features, which a Linear then mixes).
    """
    queue = [f for factors in dims for f in factors if f.size != 1 or f.axis is not None]
    result: list[Dim] = []
    for size in shape:
        if size == 1:
            head = queue[:1]
            if head and head[0].size == 1:
                result.append((queue.pop(0),))
            else:
                result.append(())
            continue
        group: list[Factor] = []
        filled = 1
        while filled < size:
            if not queue:
                return None
            factor = queue.pop(0)
            if size % (filled * factor.size) == 0:
                group.append(factor)
                filled *= factor.size
                continue
            need = size // filled
            if size % filled or factor.size % need:
                return None
            group.append(Factor(factor.axis, need, False))
            queue.insert(0, Factor(factor.axis, factor.size // need, False))
            filled *= need
        result.append(tuple(group))
    if any(f.size != 1 for f in queue):
        return None
    if queue:  # trailing size-1 axes: they join the last dim
        if not result:
            return None
        result[-1] = (*result[-1], *queue)
    return tuple(result)


def forget(fields: Sequence[AxisState], axes: Iterable[int]) -> Fields:
    """``fields`` with each of ``axes`` unknown, unless it is global (global stays global) or
    broadcast-only (scrambling positions creates no path)."""
    result = list(fields)
    for axis in axes:
        current = result[axis]
        if not isinstance(current, BroadcastOnly) and not (current and current.is_global):
            result[axis] = None
    return tuple(result)


def fraction_free(value: int | Fraction) -> int | float:
    """An exact value as JSON can hold it: an int, or a float for a true fraction."""
    if type(value) is int:  # most values; isinstance(x, Fraction) goes through abc: slow
        return value
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    return value
