"""A worked problem and how its numbers are written (shared by the worked_* modules, A7).

Numbers in steps are exact: ints as they are, fractions as finite decimals (``0.25``) or as
``p/q``; results use thousands separators (``9,472``) and per-axis sizes read ``112 x 112``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TypeVar

from cnnkit.arith._axes import axis_name

# One axis's numbers: a tuple, grouped by equality (hashable).
RowT = TypeVar("RowT", bound=tuple[object, ...])

__all__ = ["WorkedProblem", "format_value", "group_axes", "number", "times"]


@dataclass
class WorkedProblem:
    """A problem worked step by step: ``steps`` are lines of text, ``result`` the named answers.

    ``source`` names the seed a problem comes from; ``note`` says where the seed's own figure
    differs from the computed one (or was approximate).
    """

    title: str
    steps: list[str]
    result: dict[str, object]
    source: str = ""
    note: str = ""

    def text(self) -> str:
        """The problem as plain text: title, indented steps, the result line, the note."""
        title = f"{self.title} (seed {self.source})" if self.source else self.title
        lines = [title, *(f"  {line}" for line in self.steps)]
        answer = ", ".join(f"{key} = {format_value(value)}" for key, value in self.result.items())
        lines.append(f"  => {answer}")
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: tuples become lists, exact fractions become floats."""
        return {
            "title": self.title,
            "source": self.source,
            "steps": list(self.steps),
            "result": {key: _jsonable(value) for key, value in self.result.items()},
            "note": self.note,
        }


def _jsonable(value: object) -> object:
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def number(value: object) -> str:
    """An exact number as text: ints as is, fractions as decimals when finite, else p/q."""
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        rest = value.denominator
        for prime in (2, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            decimal = Decimal(value.numerator) / Decimal(value.denominator)
            return format(decimal.normalize(), "f")
        return f"{value.numerator}/{value.denominator}"
    return str(value)


def format_value(value: object) -> str:
    """A result value: counts with thousands separators, per-axis sizes as ``112 x 112``."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, tuple):
        return " x ".join(number(v) for v in value)
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    return number(value)


def group_axes(rows: Sequence[RowT]) -> list[tuple[str, RowT]]:
    """Axes with identical numbers, together: [("H, W", numbers)] (order of first appearance)."""
    ndim = len(rows)
    grouped: dict[RowT, list[str]] = {}
    for axis, row in enumerate(rows):
        grouped.setdefault(row, []).append(axis_name(axis, ndim))
    return [(", ".join(names), row) for row, names in grouped.items()]


def times(values: Sequence[object]) -> str:
    return "*".join(number(v) for v in values)
