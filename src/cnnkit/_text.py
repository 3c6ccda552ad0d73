"""Plain-text layout shared by the renderers: left-aligned columns."""

from __future__ import annotations

from collections.abc import Sequence


def aligned_rows(rows: Sequence[Sequence[object]]) -> list[str]:
    """Each row's cells left-aligned in columns as wide as their widest cell, two spaces
    apart, trailing spaces removed (the first row is usually the header)."""
    texts = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(*texts, strict=True)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in texts
    ]
