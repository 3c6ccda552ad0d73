"""Per-axis arguments: ints or sequences in, validated tuples out (shared by arith modules).

Convention for every public arith function: a spatial argument is an int (the same value on every
axis) or a sequence with one entry per spatial axis. The number of spatial axes is the length of
the longest sequence argument, 1 when every argument is an int. Axes are named like PyTorch's
shape docs: ``L`` for 1-D, ``H, W`` for 2-D, ``D, H, W`` for 3-D.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from fractions import Fraction

from cnnkit.errors import ConfigError

# An int (same on every axis) or one int per axis.
IntOrSequence = int | Sequence[int]

AXIS_NAMES: dict[int, tuple[str, ...]] = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def axis_name(axis: int, ndim: int) -> str:
    """``H`` for axis 0 of 2-D; ``axis 4`` where PyTorch has no letter."""
    names = AXIS_NAMES.get(ndim)
    return names[axis] if names else f"axis {axis}"


def is_sequence(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def spatial_ndim(*values: object) -> int:
    """The length of the longest sequence among ``values``; 1 when all are scalars."""
    lengths = [len(v) for v in values if is_sequence(v)]  # type: ignore[arg-type]  # is_sequence / the caller narrowed the value; the checker cannot follow it
    return max(lengths, default=1)


def as_int(value: object, name: str) -> int:
    """``value`` as an int (a bool, float or string is refused with a ConfigError)."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]  # is_sequence / the caller narrowed the value; the checker cannot follow it
    except TypeError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def as_tuple(value: IntOrSequence, ndim: int, name: str) -> tuple[int, ...]:
    """``value`` as a tuple of ``ndim`` ints: an int is repeated, a sequence must have ``ndim``.

    Raises ConfigError naming ``name`` when the value is not an int or has the wrong length.
    """
    if is_sequence(value):
        values = tuple(as_int(v, name) for v in value)  # type: ignore[union-attr]  # is_sequence / the caller narrowed the value; the checker cannot follow it
        if len(values) != ndim:
            raise ConfigError(
                f"{name} has {len(values)} values {values}, expected {ndim} (one per spatial axis)"
            )
        return values
    return (as_int(value, name),) * ndim


def require_at_least(values: tuple[int, ...], minimum: int, name: str) -> None:
    """ConfigError naming the argument and axis when a value is below ``minimum``."""
    for axis, value in enumerate(values):
        if value < minimum:
            where = f" on axis {axis_name(axis, len(values))}" if len(values) > 1 else ""
            raise ConfigError(f"{name} must be >= {minimum}{where}, got {value}")


def exact(value: Fraction | int) -> Fraction | int:
    """A Fraction with denominator 1 becomes an int, so results print as plain numbers."""
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


def product(values: Sequence[int]) -> int:
    result = 1
    for value in values:
        result *= value
    return result
