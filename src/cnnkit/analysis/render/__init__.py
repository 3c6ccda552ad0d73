"""Renderers: a Summary in, text out. They format; they never compute.

``RENDERERS`` maps each ``--format`` of ``cnnkit summary`` and ``cnnkit diagram`` to its
function.
"""

from __future__ import annotations

from collections.abc import Callable

from cnnkit.analysis.render.ascii import render_ascii
from cnnkit.analysis.render.csv import render_csv
from cnnkit.analysis.render.json import render_json
from cnnkit.analysis.render.markdown import render_markdown
from cnnkit.analysis.render.mermaid import render_mermaid
from cnnkit.analysis.render.table import render_table
from cnnkit.analysis.summary import Summary

SUMMARY_FORMATS: dict[str, Callable[[Summary], str]] = {
    "table": render_table,
    "json": render_json,
    "csv": render_csv,
    "md": render_markdown,
}
DIAGRAM_FORMATS: dict[str, Callable[[Summary], str]] = {
    "ascii": render_ascii,
    "mermaid": render_mermaid,
}

__all__ = [
    "DIAGRAM_FORMATS",
    "SUMMARY_FORMATS",
    "render_ascii",
    "render_csv",
    "render_json",
    "render_markdown",
    "render_mermaid",
    "render_table",
]
