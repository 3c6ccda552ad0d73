"""The human table of ``cnnkit summary`` (rich), followed by the totals."""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from cnnkit.analysis.render._footer import total_lines
from cnnkit.analysis.render._format import count, rf_text, shape_text, si
from cnnkit.analysis.summary import Summary
from cnnkit.errors import ConfigError

COLUMNS = ("Layer", "Type", "Output", "Params", "MACs", "RF")
# The optional columns, by the names ``--columns`` takes, in the order they are shown.
OPTIONAL = {
    "input": ("Input", lambda row: ";".join(shape_text(s) for s in row.input_shapes)),
    "kernel": ("Kernel", lambda row: "" if row.kernel is None else shape_text(row.kernel)),
    "params": ("Params", lambda row: count(row.params)),
    "trainable": ("Trainable", lambda row: count(row.trainable_params)),
    "macs": ("MACs", lambda row: count(row.macs)),
    "other_flops": ("Other FLOPs", lambda row: count(row.other_flops)),
    "memory": ("Memory", lambda row: si(row.activation_bytes, "B")),
    "rf": ("RF", rf_text),
}
DEFAULT_COLUMNS = ("params", "macs", "rf")
_RIGHT = {"Params", "Trainable", "MACs", "Other FLOPs", "Memory"}


def render_table(
    summary: Summary, width: int | None = None, columns: Sequence[str] = DEFAULT_COLUMNS
) -> str:
    """One row per layer: name, type, output shape and the chosen ``columns`` (names of
    :data:`OPTIONAL`; default params, MACs, receptive field), then the totals.

    Every cell is printed whole: a terminal narrower than the table (``width``, default the
    terminal's) gets longer lines, never a name cut mid-word.
    """
    unknown = [name for name in columns if name not in OPTIONAL]
    if unknown:
        raise ConfigError(f"unknown column {unknown[0]!r}; choose from {', '.join(OPTIONAL)}")
    chosen = [name for name in OPTIONAL if name in columns]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for title in ("Layer", "Type", "Output", *(OPTIONAL[name][0] for name in chosen)):
        table.add_column(title, justify="right" if title in _RIGHT else "left", no_wrap=True)
    for row in summary.layers:
        cells = [OPTIONAL[name][1](row) for name in chosen]
        table.add_row(row.name, row.type, shape_text(row.output_shape), *cells)
    if width is None:
        width = shutil.get_terminal_size((100, 24)).columns
    natural = Console(width=_WIDE).measure(table).maximum
    buffer = io.StringIO()
    console = Console(file=buffer, width=max(width, natural), color_system=None, highlight=False)
    console.print(table)
    return buffer.getvalue() + "\n".join(total_lines(summary)) + "\n"


_WIDE = 10_000  # wider than any table: measures its natural width
