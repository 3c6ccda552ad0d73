"""Text rendering of :func:`cnnkit.train.predict` results (``cnnkit predict``); computes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnkit.train.predict import Prediction


def render_table(predictions: list[Prediction]) -> str:
    """One row per image: the image, then its classes, most probable first, with percent."""
    k = len(predictions[0].top)
    rows = [["image", *(f"top-{i}" for i in range(1, k + 1))]]
    for prediction in predictions:
        rows.append(
            [prediction.image, *(f"{c.name} {100 * c.probability:.1f}%" for c in prediction.top)]
        )
    widths = [max(len(row[column]) for row in rows) for column in range(k + 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
