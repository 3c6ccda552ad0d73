"""JSON that every parser accepts: NaN and infinities become ``null``.

Python's ``json`` writes ``NaN``/``Infinity`` by default, which RFC 8259 (and ``jq``,
JavaScript's ``JSON.parse``) reject. A metric that could not be measured (the accuracy of a
class with no images, the loss of a model that outputs NaN) is written as ``null`` instead.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (dicts, lists, tuples walked)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def dumps(value: Any, indent: int | None = 2) -> str:
    """``json.dumps`` of :func:`finite` ``(value)``; ``allow_nan=False`` guards the rule."""
    return json.dumps(finite(value), indent=indent, allow_nan=False)
