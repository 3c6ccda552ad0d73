"""Text forms of the numbers a Summary holds (presentation only: nothing is computed here)."""

from __future__ import annotations

from collections.abc import Sequence

from cnnkit.analysis.summary import LayerRow

# Box-drawing arithmetic symbols for the functions a diagram shows as operators.
OPERATORS = {"add": "+", "sub": "-", "mul": "×", "div": "÷", "cat": "cat", "matmul": "@"}


def shape_text(shape: Sequence[int]) -> str:
    """``(1, 64, 56, 56)`` -> ``1x64x56x56`` (``()`` -> ``scalar``)."""
    return "x".join(str(v) for v in shape) if len(shape) else "scalar"


def count(value: int) -> str:
    """``11689512`` -> ``11,689,512``."""
    return f"{value:,}"


def si(value: float, unit: str = "") -> str:
    """``1814073344`` -> ``1.81 G`` (powers of 1000, as GB = 10^9 bytes in arith.memory)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:g} {unit}".rstrip()


def number(value: int | float | None) -> str:
    if value is None:
        return "?"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def axes_text(values: Sequence[int | float | None] | None) -> str:
    """Per-axis values: ``(435, 435)`` -> ``435``, ``(7, 5)`` -> ``7x5``, unknown -> ``?``."""
    if values is None:
        return "-"
    if not values:
        return ""
    if len(set(values)) == 1:
        return number(values[0])
    return "x".join(number(v) for v in values)


def field_text(values: Sequence[int | float | None] | None, whole: Sequence[bool] | None) -> str:
    """Per-axis receptive fields in words: ``global`` where ``whole``, ``unknown`` where
    ``None`` (no closed form), collapsed like :func:`axes_text` (``global``, ``851``,
    ``global x 7``)."""
    if values is None:
        return "-"
    flags = whole or (False,) * len(values)
    words = [
        "global" if flag else "unknown" if value is None else number(value)
        for value, flag in zip(values, flags, strict=True)
    ]
    return words[0] if len(set(words)) == 1 else " x ".join(words)


def rf_text(row: LayerRow) -> str:
    """The receptive field column: ``all`` when it covers the whole input on every axis."""
    if row.rf_global and all(row.rf_global):
        return "all"
    return axes_text(row.rf)


def label(row: LayerRow) -> str:
    """How a diagram names a row: its type, or an operator symbol for a function."""
    return OPERATORS.get(row.type, row.type)
