"""``--format csv``: one line per layer, then a ``(total)`` line."""

from __future__ import annotations

import csv
import io

from cnnkit.analysis.render._format import axes_text, shape_text
from cnnkit.analysis.summary import Summary

FIELDS = (
    "name", "type", "depth", "input_shapes", "output_shape", "params", "trainable_params",
    "macs", "other_flops", "activation_bytes", "rf", "jump", "start", "rf_global", "local_rf",
)  # fmt: skip


def render_csv(summary: Summary) -> str:
    """Shapes as ``1x64x56x56`` (several inputs joined by ``;``), fields as ``435x435`` (the
    input's extent where ``rf_global`` is ``true``), ``local_rf`` with broadcast inputs cut."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FIELDS)
    for row in summary.layers:
        writer.writerow(
            [
                row.name,
                row.type,
                row.depth,
                ";".join(shape_text(s) for s in row.input_shapes),
                shape_text(row.output_shape),
                row.params,
                row.trainable_params,
                row.macs,
                row.other_flops,
                row.activation_bytes,
                axes_text(row.rf),
                axes_text(row.jump),
                axes_text(row.start),
                _flags(row.rf_global),
                axes_text(row.local_rf),
            ]
        )
    t = summary.total
    writer.writerow(
        [
            "(total)", "", "", shape_text(summary.input_shape), "", t.params, t.trainable_params,
            t.macs, t.other_flops, t.activation_bytes, axes_text(t.rf), axes_text(t.jump),
            axes_text(t.start), _flags(t.rf_global), axes_text(t.local_rf),
        ]
    )  # fmt: skip
    return buffer.getvalue()


def _flags(values: tuple[bool, ...] | None) -> str:
    """Per-axis flags: ``true``, ``false``, or ``true;false`` when the axes differ."""
    if values is None:
        return ""
    words = ["true" if v else "false" for v in values]
    return words[0] if len(set(words)) == 1 else ";".join(words)
