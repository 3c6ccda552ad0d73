"""The totals lines printed under a table (shared by the table and Markdown renderers)."""

from __future__ import annotations

from cnnkit.analysis.render._format import axes_text, count, field_text, shape_text, si
from cnnkit.analysis.summary import Summary


def total_lines(summary: Summary) -> list[str]:
    """Totals, memory, receptive field and what was not counted, one fact per line."""
    t = summary.total
    frozen = t.params - t.trainable_params
    shapes = summary.input_shapes or (summary.input_shape,)
    lines = [
        f"Input: {', '.join(shape_text(s) for s in shapes)}",
        f"Params: {count(t.params)} (trainable {count(t.trainable_params)}, frozen "
        f"{count(frozen)}), {si(t.param_bytes, 'B')}",
        f"MACs: {count(t.macs)} ({si(t.macs)}); FLOPs = 2 x MACs = {si(t.flops)}; "
        f"other FLOPs: {count(t.other_flops)} ({si(t.other_flops)})",
        f"Activations: {si(t.activation_bytes, 'B')} forward; x2 for training: "
        f"{si(t.training_activation_bytes, 'B')} (rule-of-thumb estimate)",
    ]
    if summary.measured is not None:
        m = summary.measured
        lines.append(
            f"Measured: autograd saves {si(m.saved_bytes, 'B')} for backward "
            f"({m.saved_tensors} tensors; estimate {si(m.estimate_bytes, 'B')})"
        )
    if t.rf_layer is not None:
        lines.append(_field_line(summary))
    if summary.unused_params:
        lines.append(f"Parameters never used by the forward pass: {count(summary.unused_params)}")
    if summary.unsupported:
        ops = ", ".join(f"{name} x{n}" for name, n in sorted(summary.unsupported.items()))
        lines.append(f"Not counted (no rule): {ops}")
    if summary.fallback_reason:
        lines.append(f"Traced on {summary.device} (not meta): {summary.fallback_reason}")
    return lines


def _field_line(summary: Summary) -> str:
    """The last spatial output's field: exact (``global``: it sees the whole input), then the
    local field where it differs (broadcast inputs such as SE gates cut), then the grid."""
    t = summary.total
    exact = field_text(t.rf, t.rf_global)
    line = f"Receptive field at {t.rf_layer}: {exact}"
    if t.rf_global and any(t.rf_global):
        line += " (the whole input)"
    local = field_text(t.local_rf, t.local_rf_global)
    if local != exact:
        line += f"; local (broadcast inputs cut): {local}"
    if t.jump is not None and any(v is not None for v in t.jump):
        line += f", jump {axes_text(t.jump)}, start {axes_text(t.start)}"
    elif t.rf is not None and all(v is None for v in t.rf):
        line += " (no closed form on the path)"
    return line
