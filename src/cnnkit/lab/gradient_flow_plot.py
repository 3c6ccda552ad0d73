"""The gradient-flow lab's plot: gradient norm per block, with and without residuals.

matplotlib's Figure API on the Agg canvas, never pyplot's global state or backend.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit._io import atomic_save_figure, figure_format

if TYPE_CHECKING:
    from cnnkit.lab.gradient_flow import GradientFlowResult


def write_plot(result: GradientFlowResult, path: str | Path) -> None:
    """:func:`plot_figure` written atomically, as PNG, SVG or PDF by ``path``'s suffix."""
    figure_format(path)  # refuse a suffix that is no figure format before drawing
    atomic_save_figure(plot_figure(result), path, dpi=100)


def plot_figure(result: GradientFlowResult) -> Any:
    """Gradient norm per block, one panel per experiment, log scale (a matplotlib Figure)."""
    from matplotlib.figure import Figure

    experiments = sorted({c.experiment for c in result.curves})
    figure = Figure(figsize=(5 * len(experiments), 3.6))
    axes = list(figure.subplots(1, len(experiments), squeeze=False)[0])
    for axis, experiment in zip(axes, experiments, strict=True):
        curves = [result.curve(experiment, residual) for residual in (True, False)]
        nonzero = [v for c in curves for v in c.input_gradient_norms if v > 0]
        floor = min(nonzero) / 10 if nonzero else 1.0
        for curve in curves:
            norms = curve.input_gradient_norms
            blocks = range(1, len(norms) + 1)
            label = "with residual" if curve.residual else "without residual"
            # a log scale cannot show 0: draw the non-zero norms, and mark exact zeros below them
            shown = [v if v > 0 else math.nan for v in norms]
            (line,) = axis.semilogy(blocks, shown, marker=".", label=label)
            zeros = [b for b, v in zip(blocks, norms, strict=True) if v == 0]
            if zeros:
                axis.scatter(zeros, [floor] * len(zeros), marker="v", color=line.get_color(),
                             label=f"{label}: exactly 0")  # fmt: skip
        axis.set_title(f"{experiment} blocks")
        axis.set_xlabel("block (1 = nearest the input)")
        axis.set_ylabel("||dL/d input||")
        axis.legend()
    figure.tight_layout()
    return figure
