"""The CAM section: Grad-CAM overlays of a few correct and a few wrong test images.

The maps come from the explain capability (``cnnkit.explain.cam(model, images, method, layer,
targets) -> CamResult`` with ``.upsampled(size)`` giving (B, H, W) maps in [0, 1]). Whether it is
there is decided in one place, :func:`find_cam`, so wiring it in is a one-line change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cnnkit.errors import CnnkitError

if TYPE_CHECKING:
    from cnnkit.report.predictions import TestRun

MISSING_MESSAGE = "CAM overlays need cnnkit.explain"


@dataclass(frozen=True)
class CamTile:
    """One overlay: the image index, its labels, the confidence and the PNG data URI."""

    index: int
    true: str
    predicted: str
    confidence: float
    correct: bool
    uri: str


@dataclass(frozen=True)
class CamSection:
    """The overlays, or ``message`` saying why there are none."""

    method: str
    tiles: list[CamTile] = field(default_factory=list)
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def find_cam() -> Callable[..., Any] | None:
    """``cnnkit.explain.cam`` when the explain capability is installed, else ``None``."""
    try:
        from cnnkit.explain import cam
    except ImportError:
        return None
    return cam


def cam_section(test: TestRun, *, correct: int = 4, wrong: int = 4) -> CamSection:
    """Grad-CAM of the predicted class for the ``correct`` most confident right answers and
    the ``wrong`` most confident mistakes of the test set, overlaid on the images."""
    from cnnkit.report.figures import cam_overlay_uri

    cam = find_cam()
    if cam is None:
        return CamSection("gradcam", message=MISSING_MESSAGE)
    predictions = test.predictions
    hits = predictions.predicted == predictions.labels
    order = predictions.confidence.argsort(descending=True, stable=True)
    right = [int(i) for i in order if hits[i]][:correct]
    misses = [int(i) for i in order if not hits[i]][:wrong]
    chosen = right + misses
    if not chosen:
        return CamSection("gradcam", message="no test images to explain")
    targets = [int(t) for t in predictions.predicted[chosen]]
    try:
        result = cam(test.model, test.normalised(chosen), method="gradcam", targets=targets)
        maps = result.upsampled(tuple(test.images.image_shape[1:]))
    except CnnkitError as exc:
        return CamSection("gradcam", message=f"CAM overlays could not be computed: {exc}")
    classes = predictions.classes
    tiles = [
        CamTile(
            index=index,
            true=classes[int(predictions.labels[index])],
            predicted=classes[int(predictions.predicted[index])],
            confidence=float(predictions.confidence[index]),
            correct=bool(hits[index]),
            uri=cam_overlay_uri(test.images.images[index], maps[position].detach().cpu().numpy()),
        )
        for position, index in enumerate(chosen)
    ]
    return CamSection("gradcam", tiles=tiles)
