"""``--format md``: a Markdown table (for READMEs and reports), then the totals as a list."""

from __future__ import annotations

from cnnkit.analysis.render._footer import total_lines
from cnnkit.analysis.render._format import count, rf_text, shape_text
from cnnkit.analysis.summary import Summary

HEADER = ("Layer", "Type", "Output", "Params", "MACs", "Other FLOPs", "RF")


def render_markdown(summary: Summary) -> str:
    """One table row per layer; names in backticks; numbers right-aligned."""
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for row in summary.layers:
        cells = (
            f"`{row.name}`",
            row.type,
            shape_text(row.output_shape),
            count(row.params),
            count(row.macs),
            count(row.other_flops),
            rf_text(row),
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {line}" for line in total_lines(summary)]
    return "\n".join(lines) + "\n"
