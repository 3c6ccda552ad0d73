"""An :class:`~cnnkit.train.evaluation.EvalResult` as text: what ``cnnkit eval`` prints.

Rendering only: metrics, per-class precision/recall/F1, the confusion matrix and the hardest
samples are computed by :func:`~cnnkit.train.evaluation.evaluate`; this formats them.
"""

from __future__ import annotations

import math

from cnnkit.train.evaluation import EvalResult, tta_label


def render_text(result: EvalResult) -> str:
    """Metrics, per-class precision/recall/F1 and the confusion matrix as aligned text."""
    metrics = result.metrics
    classes = metrics.classes
    tta = tta_label(result.tta, result.tta_shift)
    lines = [
        f"{result.checkpoint} on {result.dataset} {result.split} ({metrics.count:,} images, "
        f"{result.weights} weights{', ' + tta if tta else ''})",
        f"top-1 {metrics.top1:.2f}%  top-5 {metrics.top5:.2f}%  loss {metrics.loss:.4f}",
    ]
    if result.run_environment is not None:
        lines.append(f"trained with {result.run_environment.line()}")
    lines += [
        "",
        "per class (recall = the class's accuracy):",
    ]
    width = max(len(name) for name in classes)
    lines.append(f"  {'':<{width}}  {'precision':>9}  {'recall':>7}  {'F1':>7}  {'images':>7}")
    for score in metrics.class_scores:
        lines.append(
            f"  {score.name:<{width}}  {_percent(score.precision):>9}  "
            f"{_percent(score.recall):>7}  {_percent(score.f1):>7}  {score.support:>7,}"
        )
    lines += ["", "confusion matrix (rows: true class, columns: predicted):"]
    cell = max(4, max(len(str(v)) for row in metrics.confusion for v in row) + 1)
    label_width = width + len(str(len(classes) - 1)) + 1
    lines.append(" " * label_width + "".join(f"{i:>{cell}}" for i in range(len(classes))))
    for index, (name, row) in enumerate(zip(classes, metrics.confusion, strict=True)):
        label = f"{index} {name}"
        lines.append(f"{label:<{label_width}}" + "".join(f"{v:>{cell}}" for v in row))
    if metrics.hardest:
        lines += ["", "hardest samples (highest loss):"]
        for sample in metrics.hardest:
            lines.append(
                f"  #{sample.index:<6} {classes[sample.label]} -> {classes[sample.predicted]} "
                f"({sample.confidence:.0%}), loss {sample.loss:.2f}"
            )
    return "\n".join(lines)


def _percent(value: float) -> str:
    """``85.00%``, or ``-`` where the figure is undefined (no image of, or predicted as, it)."""
    return f"{value:.2f}%" if math.isfinite(value) else "-"
