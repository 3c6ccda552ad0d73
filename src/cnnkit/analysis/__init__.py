"""Whole-model analysis: capture -> graph -> rules -> Summary -> render (A4, A5, A6, A8).

``summarize(model, input_shape)`` traces a model once (on the meta device when it can) and
returns a :class:`Summary`; ``register_rule`` adds a rule for an op or module class; the
renderers in :mod:`cnnkit.analysis.render` turn a Summary into a table, JSON, CSV, Markdown,
or an ASCII/Mermaid diagram.
"""

from __future__ import annotations

from cnnkit.analysis.capture import capture
from cnnkit.analysis.memory import MeasuredMemory, measure_saved_bytes
from cnnkit.analysis.rules import RULES, OpFigures, register_rule
from cnnkit.analysis.summary import LayerRow, Summary, Totals, summarize

__all__ = [
    "RULES",
    "LayerRow",
    "MeasuredMemory",
    "OpFigures",
    "Summary",
    "Totals",
    "capture",
    "measure_saved_bytes",
    "register_rule",
    "summarize",
]
