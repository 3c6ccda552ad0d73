"""The zoo table (:class:`~cnnkit.analysis.model_table.ZooRow` rows) as text: a rich table, JSON,
CSV and Markdown, each followed where it helps by what the columns mean. They format; every
figure is computed by :func:`~cnnkit.analysis.model_table.zoo_table`.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict

from cnnkit.analysis.model_table import WeightsFit, ZooRow

WIDE = 400  # wider than any row: rich would truncate cells to fit a narrower console
COLUMNS = ("Model", "Family", "Input", "Params", "MACs", "RF", "Top-1 %")


def _rf_text(row: ZooRow) -> str:
    """The local field per axis (``global`` where even it covers the input), then
    ``(global)`` where the exact field is global but the local one is not."""
    if row.local_rf is None or row.local_rf_global is None:
        return "-"
    axes = [
        "global" if whole else "?" if value is None else str(value)
        for value, whole in zip(row.local_rf, row.local_rf_global, strict=True)
    ]
    text = axes[0] if len(set(axes)) == 1 else "x".join(axes)
    if row.rf_global and any(row.rf_global) and not all(row.local_rf_global):
        text += " (global)"
    return text


def _cells(row: ZooRow) -> list[str]:
    return [
        row.name,
        row.family,
        "x".join(str(v) for v in row.input_shape),
        f"{row.params:,}",
        "-" if row.macs is None else f"{row.macs:,}",
        _rf_text(row),
        "-" if row.top1 is None else f"{row.top1:.1f}",
    ]


def _footer(rows: list[ZooRow]) -> str:
    lines = [
        "MACs: multiply-accumulates of convs, linears and matmuls (torch.utils.flop_counter / 2)",
        "RF: receptive field of the last feature map before global pooling, in input pixels,",
        "    through its convolutions (inputs broadcast over the map, such as SE gates, left out);",
        "    (global): an SE gate or other global branch also lets that map see the whole input;",
        "    global: even the convolutions see all of it; ?: no single field (uneven pooling)",
        "Top-1: published ImageNet-1k accuracy (sources: --format json)",
    ]
    lines += [f"{row.name}: {row.note}" for row in rows if row.note]
    return "\n".join(lines) + "\n"


def render_table(rows: list[ZooRow]) -> str:
    """The human table (rich), then what the columns mean. Every cell is printed whole: the
    table is as wide as its widest cells, whatever the terminal (a table never pads itself)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in COLUMNS:
        right = column in ("Params", "MACs", "RF", "Top-1 %")
        table.add_column(column, justify="right" if right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*_cells(row))
    buffer = io.StringIO()
    Console(file=buffer, width=WIDE, color_system=None, highlight=False).print(table)
    return buffer.getvalue() + _footer(rows)


def render_json(rows: list[ZooRow]) -> str:
    """Every field of every row (the published top-1's source included)."""
    return json.dumps([asdict(row) for row in rows], indent=2) + "\n"


def render_csv(rows: list[ZooRow]) -> str:
    """One line per row; per-axis fields joined by ``x`` (flags by ``;``), unknowns as ``?``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    fields = list(ZooRow.__dataclass_fields__)
    writer.writerow(fields)
    for row in rows:
        values = asdict(row)
        for key in ("input_shape", "rf", "local_rf"):
            if values[key] is not None:
                values[key] = "x".join(_csv_value(v) for v in values[key])
        for key in ("rf_global", "local_rf_global"):  # flags: one word, or one per axis
            if values[key] is not None:
                words = [_csv_value(v) for v in values[key]]
                values[key] = words[0] if len(set(words)) == 1 else ";".join(words)
        writer.writerow(["" if values[f] is None else values[f] for f in fields])
    return buffer.getvalue()


def _csv_value(value: object) -> str:
    """One axis of a per-axis field: ``?`` unknown, ``true``/``false`` for flags."""
    if value is None:
        return "?"
    return str(value).lower() if isinstance(value, bool) else str(value)


def render_markdown(rows: list[ZooRow]) -> str:
    """The table's columns as a Markdown table, then what the columns mean."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 2 + "---|" + "---:|" * 4]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n\n" + _footer(rows)


RENDERERS = {
    "table": render_table,
    "json": render_json,
    "csv": render_csv,
    "md": render_markdown,
}


def render_weights_fit(fit: WeightsFit) -> str:
    """The line of ``cnnkit zoo NAME --weights FILE`` when the file loads strictly."""
    return f"{fit.path} fits {fit.name}: {fit.tensors} tensors, {fit.params:,} parameters (strict)"
