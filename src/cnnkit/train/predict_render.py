"""Text rendering of :func:`cnnkit.train.predict` results (``cnnkit predict``); computes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnkit._text import aligned_rows

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
    return "\n".join(aligned_rows(rows))
