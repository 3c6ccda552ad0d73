"""The receptive-field recursion of a layer stack, written out step by step (A5, A7; seed 002).

Used by :func:`cnnkit.arith.worked.worked_receptive_field`; the numbers come from
:func:`cnnkit.arith.receptive_field.receptive_field_table`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

from cnnkit.arith._axes import as_tuple
from cnnkit.arith.conv import padding_pairs
from cnnkit.arith.layer_spec import format_layer
from cnnkit.arith.receptive_field import Field, receptive_field_table
from cnnkit.arith.worked_problem import WorkedProblem, group_axes, number

__all__ = ["receptive_field_steps"]


def _per_layer(values: tuple[object, ...]) -> object:
    return values[0] if len(values) == 1 else values


def _layer_numbers(
    layer: Mapping[str, object], ndim: int
) -> tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(kind, k_eff, stride, padding before) per axis, defaults as in receptive_field_table."""
    kind = str(layer.get("kind", "conv"))
    if kind == "upsample":
        factors = as_tuple(layer.get("scale_factor", 2), ndim, "scale_factor")  # type: ignore[arg-type]  # layer specs are validated by parse_layers before this point
        return "transpose", factors, factors, (0,) * ndim
    kernel = as_tuple(layer["kernel_size"], ndim, "kernel_size")  # type: ignore[arg-type]  # layer specs are validated by parse_layers before this point
    stride = as_tuple(layer.get("stride", kernel if kind == "pool" else 1), ndim, "stride")  # type: ignore[arg-type]  # layer specs are validated by parse_layers before this point
    dilation = as_tuple(layer.get("dilation", 1), ndim, "dilation")  # type: ignore[arg-type]  # layer specs are validated by parse_layers before this point
    k_eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    padding = layer.get("padding", 0)
    if kind == "transpose":
        before = as_tuple(padding, ndim, "padding")  # type: ignore[arg-type]  # layer specs are validated by parse_layers before this point
    else:
        pairs = padding_pairs(padding, kernel, stride, dilation)  # type: ignore[arg-type]  # layer specs are validated by parse_layers before this point
        before = tuple(b for b, _ in pairs)
    return kind, k_eff, stride, before


def _step_text(kind: str, row: tuple[object, ...]) -> str:
    r, j, a, k, s, p, new_r, new_j, new_a = (number(v) for v in row)
    if kind == "transpose":
        return (
            f"j = j/s = {j}/{s} = {new_j}; r = r + (k_eff - 1) j/s = {r} + ({k} - 1)*{new_j} "
            f"= {new_r}; start = a + (p - (k_eff - 1)/2) j/s = {a} + ({p} - ({k} - 1)/2)*{new_j}"
            f" = {new_a}"
        )
    return (
        f"j = {j}*{s} = {new_j}; r = {r} + ({k} - 1)*{j} = {new_r}; "
        f"start = {a} + (({k} - 1)/2 - {p})*{j} = {new_a}"
    )


def receptive_field_steps(layers: Sequence[Mapping[str, object]]) -> WorkedProblem:
    """Seed 002's recursion for each layer, numbers substituted, per group of equal axes."""
    table = receptive_field_table(layers)
    ndim = table[0].ndim if table else 1
    previous = Field.input(ndim)
    steps = [
        "conv/pool: j = j_prev s; r = r_prev + (k_eff - 1) j_prev; "
        "start = a_prev + ((k_eff - 1)/2 - p) j_prev",
        "input: r = 1, j = 1, start = 0.5 (the centre of pixel 0)",
    ]
    if any(str(layer.get("kind", "conv")) in ("transpose", "upsample") for layer in layers):
        steps.insert(
            1,
            "transposed conv: j = j_prev/s; r = r_prev + (k_eff - 1) j_prev/s; "
            "start = a_prev + (p - (k_eff - 1)/2) j_prev/s (upsample xf: k = s = f, p = 0)",
        )
    for index, (layer, current) in enumerate(zip(layers, table, strict=True), start=1):
        kind, k_eff, stride, before = _layer_numbers(layer, ndim)
        rows = [
            (
                previous.rf[i],
                previous.jump[i],
                previous.start[i],
                k_eff[i],
                stride[i],
                before[i],
                current.rf[i],
                current.jump[i],
                current.start[i],
            )
            for i in range(ndim)
        ]
        label = f"layer {index} ({format_layer(layer)})"
        for names, row in group_axes(rows):
            where = f" [{names}]" if ndim > 1 else ""
            steps.append(f"{label}{where}: {_step_text(kind, row)}")
        previous = current
    result: dict[str, object] = {
        "rf": [_per_layer(f.rf) for f in table],
        "jump": [_per_layer(f.jump) for f in table],
        "start": [_per_layer(tuple(Fraction(a) for a in f.start)) for f in table],
    }
    spec = ",".join(format_layer(layer) for layer in layers)
    return WorkedProblem(title=f"Receptive field of {spec}", steps=steps, result=result)
