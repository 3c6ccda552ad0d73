"""``cnnkit diagram --format mermaid``: a Mermaid ``graph LR`` of the captured graph (A8).

Seed 000 §4.1-4.2 draw these by hand; here every layer is a node labelled with its name, type
and output shape, residual adds and other operators are circles, and every edge is a tensor
the forward pass really passed.
"""

from __future__ import annotations

from cnnkit.analysis.render._format import OPERATORS, shape_text
from cnnkit.analysis.summary import Summary


def _escape(text: str) -> str:
    return text.replace('"', "#quot;")


def render_mermaid(summary: Summary) -> str:
    """``graph LR`` with nodes ``n0, n1, ...`` in execution order and ``input``."""
    lines = ["graph LR", f'  input[/"input<br/>{shape_text(summary.input_shape)}"/]']
    for index, row in enumerate(summary.layers):
        shape = shape_text(row.output_shape)
        symbol = OPERATORS.get(row.type)
        if symbol is not None:
            lines.append(f'  n{index}(("{_escape(symbol)}"))')
        else:
            text = _escape(f"{row.name}<br/>{row.type}<br/>{shape}")
            lines.append(f'  n{index}["{text}"]')
    for index, row in enumerate(summary.layers):
        for source in row.inputs:
            start = "input" if source == -1 else f"n{source}"
            lines.append(f"  {start} --> n{index}")
    return "\n".join(lines) + "\n"
