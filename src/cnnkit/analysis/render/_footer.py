"""The totals lines printed under a table (shared by the table and Markdown renderers)."""

from __future__ import annotations

from cnnkit.analysis.render._format import axes_text, count, shape_text, si
from cnnkit.analysis.summary import Summary


def total_lines(summary: Summary) -> list[str]:
    """Totals, memory, receptive field and what was not counted, one fact per line."""
    t = summary.total
    frozen = t.params - t.trainable_params
    lines = [
        f"Input: {shape_text(summary.input_shape)}",
        f"Params: {count(t.params)} (trainable {count(t.trainable_params)}, frozen "
        f"{count(frozen)}), {si(t.param_bytes, 'B')}",
        f"MACs: {count(t.macs)} ({si(t.macs)}); FLOPs = 2 x MACs = {si(t.flops)}; "
        f"other FLOPs: {count(t.other_flops)} ({si(t.other_flops)})",
        f"Activations: {si(t.activation_bytes, 'B')} forward; x2 for training: "
        f"{si(t.training_activation_bytes, 'B')} (seed 000 estimate)",
    ]
    if summary.measured is not None:
        m = summary.measured
        lines.append(
            f"Measured: autograd saves {si(m.saved_bytes, 'B')} for backward "
            f"({m.saved_tensors} tensors; estimate {si(m.estimate_bytes, 'B')})"
        )
    if t.rf is not None:
        lines.append(
            f"Receptive field at {t.rf_layer}: {axes_text(t.rf)}, jump {axes_text(t.jump)}, "
            f"start {axes_text(t.start)}"
        )
    if summary.unused_params:
        lines.append(f"Parameters never used by the forward pass: {count(summary.unused_params)}")
    if summary.unsupported:
        ops = ", ".join(f"{name} x{n}" for name, n in sorted(summary.unsupported.items()))
        lines.append(f"Not counted (no rule): {ops}")
    if summary.fallback_reason:
        lines.append(f"Traced on {summary.device} (not meta): {summary.fallback_reason}")
    return lines
