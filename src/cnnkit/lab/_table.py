"""Plain-text tables for the labs' text output (fixed width, two spaces between columns)."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns as wide as their widest cell; trailing spaces removed."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def format_error(value: float | None, floor: float = 1e-12) -> str:
    """A relative error in 3 significant digits; below ``floor`` it prints as ``<1e-12``."""
    if value is None:
        return "-"
    if value < floor:
        return f"<{floor:.0e}"
    return f"{value:.2e}"
