"""``--format json``: the JSON contract of docs/architecture.md (Summary.to_dict)."""

from __future__ import annotations

import json

from cnnkit.analysis.summary import Summary


def render_json(summary: Summary) -> str:
    """The summary as indented JSON (exact integers; starts may be halves, as floats)."""
    return json.dumps(summary.to_dict(), indent=2) + "\n"
