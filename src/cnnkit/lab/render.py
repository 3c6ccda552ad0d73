"""The labs' results as text: what ``cnnkit lab NAME`` prints (the gradient-flow plot is in
:mod:`cnnkit.lab.gradient_flow_plot`).

Rendering only: every figure is already in the result (its ``to_dict()`` is the JSON output);
these functions format it. :func:`render_text` picks the renderer of a result's type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from cnnkit._text import aligned_rows
from cnnkit.lab.checkerboard import CheckerboardResult
from cnnkit.lab.conv_algorithms import ConvAlgorithmsResult
from cnnkit.lab.edges import EdgesResult
from cnnkit.lab.equivariance import EquivarianceResult
from cnnkit.lab.gradient_flow import GradientCurve, GradientFlowResult
from cnnkit.lab.learn_kernel import LearnKernelResult


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns as wide as their widest cell, two spaces apart; trailing spaces
    removed."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    return "\n".join(aligned_rows([headers, ["-" * w for w in widths], *rows]))


def format_error(value: float | None, floor: float = 1e-12) -> str:
    """A relative error in 3 significant digits; below ``floor`` it prints as ``<1e-12``."""
    if value is None:
        return "-"
    if value < floor:
        return f"<{floor:.0e}"
    return f"{value:.2e}"


def _tensor_text(t: torch.Tensor) -> str:
    """``repr`` of a float tensor as the seeds print it, without a negative zero."""
    return repr(t + 0.0)


def render_edges(result: EdgesResult) -> str:
    blocks = []
    for example in result.examples:
        output = torch.tensor(example.output)
        blocks.append(
            "\n".join(
                [
                    f"{example.seed}: {example.title}",
                    "input:",
                    _tensor_text(torch.tensor(example.image)),
                    "kernel:",
                    _tensor_text(torch.tensor(example.kernel)),
                    f"output ({output.shape[0]}x{output.shape[1]}):",
                    _tensor_text(output),
                    f"seed says: {example.seed_claim}",
                    f"computed:  {example.finding}",
                    *([f"note:      {example.note}"] if example.note else []),
                    "same as torch.nn.functional.conv2d: "
                    + ("yes" if example.max_difference_from_torch == 0 else "no"),
                ]
            )
        )
    return "\n\n".join(blocks)


def render_learn_kernel(result: LearnKernelResult) -> str:
    lines = [
        f"learning the kernel of 004: {result.iterations} iterations, "
        f"lr {result.learning_rate:g}, seed {result.seed}",
        f"initial kernel: {_tensor_text(torch.tensor([result.initial_kernel]))}",
    ]
    # 004 prints the loss every 2 iterations (the loss computed before that update)
    lines += [
        f"epoch {i + 1}, loss {loss:.3f}"
        for i, loss in enumerate(result.losses)
        if (i + 1) % 2 == 0
    ]
    lines += [
        f"loss after the last update: {result.final_loss:.3f}",
        f"learned kernel: {_tensor_text(torch.tensor([result.kernel]))}   (target [1, -1])",
    ]
    return "\n".join(lines)


def _shift_text(shift: tuple[int, int]) -> str:
    return f"({shift[0]}, {shift[1]})"


def render_equivariance(result: EquivarianceResult) -> str:
    table = format_table(
        ["operation", "shift", "output shift", "max error", "pixels differing",
         "error off border", "equivariant"],
        [
            [
                row.operation,
                _shift_text(row.shift),
                _shift_text(row.output_shift) + ("" if row.exact_shift else " (best)"),
                format_error(row.max_error),
                f"{100 * row.differing:.1f}%",
                format_error(row.error_away_from_border),
                "yes" if row.equivariant else "no",
            ]
            for row in result.rows
        ],
    )  # fmt: skip
    return (
        f"F(T x) vs T' F(x): {result.size}x{result.size} random image, {result.channels} "
        f"channels, seed {result.seed}\nT = circular shift; errors relative to max |F(x)|\n{table}"
    )


def render_checkerboard(result: CheckerboardResult) -> str:
    def numbers(values) -> str:
        return " ".join(f"{v:g}" for v in values)

    rows = [
        [u.method, ", ".join(f"{v:g}" for v in u.interior_values), f"{u.max_over_min:.2f}",
         "yes" if u.uniform else "no"]
        for u in result.upsamplers
    ]  # fmt: skip
    width = max(len(f"{v}") for row in result.coverage_map for v in row)
    grid = "\n".join("  " + " ".join(f"{v:>{width}}" for v in row) for row in result.coverage_map)
    return "\n".join(
        [
            f"transposed conv, kernel_size {result.kernel_size}, stride {result.stride}, "
            f"input of {result.size} ones",
            f"coverage (measured): {numbers(result.measured)}",
            f"coverage (formula):  {numbers(result.formula)}",
            f"interior pattern:    {', '.join(str(v) for v in result.interior)}",
            f"2-D coverage of a {result.size}x{result.size} input:",
            grid,
            "upsampling by the stride, all-ones input and weights, output interior:",
            format_table(["method", "interior values", "max/min", "uniform"], rows),
        ]
    )


def _ratio(residual: GradientCurve, plain: GradientCurve) -> str:
    top, bottom = residual.input_gradient_norms[0], plain.input_gradient_norms[0]
    if bottom == 0:
        return "the plain gradient is exactly 0 in float32"
    return f"the residual gradient is {top / bottom:.3g} times the plain one"


def render_gradient_flow(result: GradientFlowResult) -> str:
    depths = sorted({1, *range(10, result.blocks, 10), result.blocks})
    headers = ["block"] + [
        f"{c.experiment} {'residual' if c.residual else 'plain'}" for c in result.curves
    ]
    rows = [
        [str(d)] + [f"{c.input_gradient_norms[d - 1]:.3e}" for c in result.curves] for d in depths
    ]
    lines = [
        f"gradient norm ||dL/dx|| at the input of each block, {result.blocks} blocks, "
        f"seed {result.seed}, loss = output.sum()",
        format_table(headers, rows),
    ]
    for experiment in sorted({c.experiment for c in result.curves}):
        ratio = _ratio(result.curve(experiment, True), result.curve(experiment, False))
        lines.append(f"{experiment}, block 1: {ratio}")
    if result.image:
        lines.append(f"wrote {result.image}")
    return "\n".join(lines)


def _number(value: float | None, pattern: str, scale: float = 1.0) -> str:
    return "-" if value is None else pattern.format(value * scale)


def _megabytes(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.2f} MB"


def render_conv_algorithms(result: ConvAlgorithmsResult) -> str:
    rows = [
        [m.shape, m.method, _number(m.max_error, "{:.1e}"), _number(m.seconds, "{:.2f}", 1e3),
         _number(m.cpu_seconds, "{:.2f}", 1e3), _number(m.time_vs_torch, "{:.2f}x"),
         _megabytes(m.peak_extra_bytes), m.note]
        for m in result.measurements
    ]  # fmt: skip
    headers = ["shape", "method", "max error", "wall ms", "cpu ms", "vs torch", "peak extra"]
    table = format_table([*headers, "note"], rows)
    notes = []
    for figures in result.figures:
        line = (
            f"{figures.shape.label}: {figures.macs:,} MACs; im2col bill (002) "
            f"{_megabytes(figures.im2col_bytes)}"
        )
        if figures.winograd is not None:
            count = figures.winograd
            line += (
                f"; Winograd F(2x2,3x3) {count.winograd:,} multiplies vs {count.direct:,} "
                f"direct ({count.ratio:.2f}x fewer)"
            )
        notes.append(line)
    header = (
        f"conv2d methods, {result.dtype}, {result.threads} thread(s), median of up to "
        f"{result.repeats} interleaved runs\nmax error: largest |y - F.conv2d(x, w)| with "
        "F.conv2d in float64; vs torch: ratio of CPU times; peak extra: bytes live beyond "
        "the output (torch.profiler)"
    )
    return "\n".join([header, table, *notes])


RENDERERS: dict[type, Callable[[Any], str]] = {
    EdgesResult: render_edges,
    LearnKernelResult: render_learn_kernel,
    EquivarianceResult: render_equivariance,
    CheckerboardResult: render_checkerboard,
    GradientFlowResult: render_gradient_flow,
    ConvAlgorithmsResult: render_conv_algorithms,
}


def render_text(result: Any) -> str:
    """The text of any lab result: what ``cnnkit lab NAME`` prints."""
    return RENDERERS[type(result)](result)
