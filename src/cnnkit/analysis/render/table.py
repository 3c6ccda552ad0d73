"""The human table of ``cnnkit summary`` (rich), followed by the totals."""

from __future__ import annotations

import io
import shutil

from rich import box
from rich.console import Console
from rich.table import Table

from cnnkit.analysis.render._footer import total_lines
from cnnkit.analysis.render._format import count, rf_text, shape_text
from cnnkit.analysis.summary import Summary

COLUMNS = ("Layer", "Type", "Output", "Params", "MACs", "RF")


def render_table(summary: Summary, width: int | None = None) -> str:
    """One row per layer: name, type, output shape, params, MACs, receptive field."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name in COLUMNS:
        numeric = name in ("Params", "MACs")
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in summary.layers:
        table.add_row(
            row.name,
            row.type,
            shape_text(row.output_shape),
            count(row.params),
            count(row.macs),
            rf_text(row),
        )
    if width is None:
        width = shutil.get_terminal_size((100, 24)).columns
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False)
    console.print(table)
    return buffer.getvalue() + "\n".join(total_lines(summary)) + "\n"
