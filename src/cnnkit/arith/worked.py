"""Worked problems: the arith formulas with the numbers substituted step by step (capability A7).

Like seed 000 §6, each function states the formula, substitutes the numbers and gives the
result. The numbers come from the same functions the rest of cnnkit uses (conv_output_size,
conv_params, ...), so a worked problem cannot disagree with them. Per-axis arguments follow the
arith convention (ints or one value per axis; axes that share every number are shown together).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cnnkit.arith._axes import (
    IntOrSequence,
    as_tuple,
    spatial_ndim,
)
from cnnkit.arith.conv import (
    Padding,
    conv_macs,
    conv_output_size,
    conv_params,
    conv_transpose_macs,
    conv_transpose_output_size,
    effective_kernel_size,
    padding_pairs,
)
from cnnkit.arith.memory import dtype_bytes, im2col_elements
from cnnkit.arith.pool import pool_output_size
from cnnkit.arith.worked_problem import WorkedProblem, format_value, group_axes, times
from cnnkit.arith.worked_receptive_field import receptive_field_steps

__all__ = [
    "WorkedProblem",
    "seed_problems",
    "worked_conv",
    "worked_im2col",
    "worked_macs",
    "worked_params",
    "worked_pool",
    "worked_receptive_field",
    "worked_transpose",
]


def _conv_size_steps(
    sizes: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    padding: Padding,
    dilations: tuple[int, ...],
) -> list[str]:
    pairs = padding_pairs(padding, kernel, strides, dilations)
    k_eff = effective_kernel_size(kernel, dilations)
    steps = []
    if any(d != 1 for d in dilations):
        rows = list(zip(kernel, dilations, k_eff, strict=True))
        for names, (k, d, e) in group_axes(rows):
            steps.append(f"k_eff = d(k - 1) + 1 = {d}*({k} - 1) + 1 = {e}   [{names}]")
    if isinstance(padding, str) and padding == "same":
        for names, (before, after) in group_axes(pairs):
            steps.append(
                f"padding 'same': d(k - 1) = {before + after} -> {before} before, "
                f"{after} after   [{names}]"
            )
    symmetric = all(before == after for before, after in pairs)
    padded = "2p" if symmetric else "p_before + p_after"
    steps.append(f"n_out = floor((n + {padded} - k_eff)/s) + 1")
    axes = [(n, b, a, e, s) for n, (b, a), e, s in zip(sizes, pairs, k_eff, strides, strict=True)]
    for names, (n, before, after, e, s) in group_axes(axes):
        pad = f"2*{before}" if symmetric else f"{before} + {after}"
        span = n + before + after - e
        out = span // s + 1
        steps.append(f"{names}: floor(({n} + {pad} - {e})/{s}) + 1 = floor({span}/{s}) + 1 = {out}")
    return steps


def _conv_tuples(
    input_size: IntOrSequence,
    kernel_size: IntOrSequence,
    stride: IntOrSequence,
    padding: Padding,
    dilation: IntOrSequence,
) -> tuple[tuple[int, ...], ...]:
    ndim = spatial_ndim(input_size, kernel_size, stride, padding, dilation)
    return tuple(
        as_tuple(value, ndim, name)
        for value, name in (
            (input_size, "input_size"),
            (kernel_size, "kernel_size"),
            (stride, "stride"),
            (dilation, "dilation"),
        )
    )


def _params_step(
    in_channels: int, out_channels: int, kernel: tuple[int, ...], groups: int, bias: bool
) -> tuple[str, int]:
    params = conv_params(in_channels, out_channels, kernel, groups=groups, bias=bias)
    group = f"({in_channels}/{groups})" if groups != 1 else f"{in_channels}"
    formula = "C_out (C_in/g) prod(k)" if groups != 1 else "C_out C_in prod(k)"
    values = f"{out_channels}*{group}*{times(kernel)}"
    if bias:
        formula += " + C_out"
        values += f" + {out_channels}"
    return f"params = {formula} = {values} = {params:,}", params


def _macs_steps(
    in_channels: int,
    out_channels: int,
    kernel: tuple[int, ...],
    positions: tuple[int, ...],
    groups: int,
    batch_size: int,
    transposed: bool = False,
) -> tuple[list[str], int]:
    if transposed:
        macs = conv_transpose_macs(in_channels, out_channels, kernel, positions, groups, batch_size)
        formula = "B prod(input) C_in (C_out/g) prod(k)"
        channels = f"{in_channels}*({out_channels}/{groups})"
    else:
        macs = conv_macs(in_channels, out_channels, kernel, positions, groups, batch_size)
        formula = "B prod(out) C_out (C_in/g) prod(k)"
        channels = f"{out_channels}*({in_channels}/{groups})"
    if groups == 1:
        channels = channels.replace(f"/{groups})", "").replace("(", "")
        formula = formula.replace(" (C_out/g)", " C_out").replace(" (C_in/g)", " C_in")
    values = f"{batch_size}*{times(positions)}*{channels}*{times(kernel)}"
    steps = [
        f"MACs = {formula} = {values} = {macs:,}",
        f"FLOPs = 2 x MACs = {2 * macs:,}",
    ]
    return steps, macs


def worked_conv(
    input_size: IntOrSequence,
    kernel_size: IntOrSequence,
    stride: IntOrSequence = 1,
    padding: Padding = 0,
    dilation: IntOrSequence = 1,
    in_channels: int | None = None,
    out_channels: int | None = None,
    groups: int = 1,
    bias: bool = True,
    batch_size: int = 1,
) -> WorkedProblem:
    """Output size of a convolution, and with channels its params and MACs (seeds 000 §6, 002).

    Formulas: :func:`~cnnkit.arith.conv.conv_output_size`, :func:`~cnnkit.arith.conv.conv_params`,
    :func:`~cnnkit.arith.conv.conv_macs`.
    """
    output = conv_output_size(input_size, kernel_size, stride, padding, dilation)
    sizes, kernel, strides, dilations = _conv_tuples(
        input_size, kernel_size, stride, padding, dilation
    )
    steps = _conv_size_steps(sizes, kernel, strides, padding, dilations)
    result: dict[str, object] = {"output_size": output}
    title = f"Conv{len(sizes)}d: input {format_value(sizes)}"
    if in_channels is not None:
        title += f" x {in_channels}"
    title += f", kernel {format_value(kernel)}, stride {_compact(strides)}, padding "
    title += _padding_text(padding, kernel, strides, dilations)
    if any(d != 1 for d in dilations):
        title += f", dilation {_compact(dilations)}"
    if in_channels is not None and out_channels is not None:
        title += f", groups {groups}" if groups != 1 else ""
        title += f" -> {out_channels} channels"
        steps.append(f"output: {format_value(output)} x {out_channels}")
        params_step, params = _params_step(in_channels, out_channels, kernel, groups, bias)
        macs_steps, macs = _macs_steps(
            in_channels, out_channels, kernel, output, groups, batch_size
        )
        steps += [params_step, *macs_steps]
        result.update(params=params, macs=macs)
    return WorkedProblem(title=title, steps=steps, result=result)


def _compact(values: tuple[int, ...]) -> str:
    """One number when every axis has it (stride 2), else per axis (1 x 2)."""
    return str(values[0]) if len(set(values)) == 1 else format_value(values)


def _padding_text(
    padding: Padding, kernel: tuple[int, ...], strides: tuple[int, ...], dilations: tuple[int, ...]
) -> str:
    if isinstance(padding, str):
        return padding
    pairs = padding_pairs(padding, kernel, strides, dilations)
    if all(before == after for before, after in pairs):
        return _compact(tuple(before for before, _ in pairs))
    return " x ".join(f"({before}, {after})" for before, after in pairs)


def worked_pool(
    input_size: IntOrSequence,
    kernel_size: IntOrSequence,
    stride: IntOrSequence | None = None,
    padding: IntOrSequence = 0,
    dilation: IntOrSequence = 1,
    ceil_mode: bool = False,
) -> WorkedProblem:
    """Output size of MaxPool/AvgPool, with PyTorch's ceil_mode rule (seeds 000 §6, 004 §4.2).

    Formula: :func:`~cnnkit.arith.pool.pool_output_size`.
    """
    output = pool_output_size(input_size, kernel_size, stride, padding, dilation, ceil_mode)
    ndim = len(output)
    sizes = as_tuple(input_size, ndim, "input_size")
    kernel = as_tuple(kernel_size, ndim, "kernel_size")
    strides = kernel if stride is None else as_tuple(stride, ndim, "stride")
    pads = as_tuple(padding, ndim, "padding")
    k_eff = effective_kernel_size(kernel, dilation)
    rounding = "ceil" if ceil_mode else "floor"
    steps = [f"n_out = {rounding}((n + 2p - k_eff)/s) + 1"]
    if stride is None:
        steps.insert(0, "stride defaults to the kernel size")
    rows = list(zip(sizes, pads, k_eff, strides, output, strict=True))
    for names, (n, p, e, s, out) in group_axes(rows):
        span = n + 2 * p - e
        rounded = -(-span // s) if ceil_mode else span // s
        line = f"{names}: {rounding}(({n} + 2*{p} - {e})/{s}) + 1 = {rounding}({span}/{s}) + 1"
        line += f" = {rounded + 1}"
        if ceil_mode:
            start = rounded * s
            keep = "no: keep it" if start < n + p else "yes: drop it"
            line += f"; last window starts at {rounded}*{s} = {start} >= n + p = {n + p}? {keep}"
            line += f" -> {out}"
        steps.append(line)
    title = (
        f"Pool{ndim}d: input {format_value(sizes)}, kernel {format_value(kernel)}, "
        f"stride {_compact(strides)}, padding {_compact(pads)}"
    )
    dilations = as_tuple(dilation, ndim, "dilation")
    if any(d != 1 for d in dilations):
        title += f", dilation {_compact(dilations)}"
    title += ", ceil_mode" if ceil_mode else ""
    return WorkedProblem(title=title, steps=steps, result={"output_size": output})


def worked_transpose(
    input_size: IntOrSequence,
    kernel_size: IntOrSequence,
    stride: IntOrSequence = 1,
    padding: IntOrSequence = 0,
    output_padding: IntOrSequence = 0,
    dilation: IntOrSequence = 1,
    in_channels: int | None = None,
    out_channels: int | None = None,
    groups: int = 1,
    batch_size: int = 1,
) -> WorkedProblem:
    """Output size of a transposed convolution, and with channels its params and MACs (002)."""
    output = conv_transpose_output_size(
        input_size, kernel_size, stride, padding, output_padding, dilation
    )
    ndim = len(output)
    names = ("input_size", "kernel_size", "stride", "padding", "output_padding", "dilation")
    values = (input_size, kernel_size, stride, padding, output_padding, dilation)
    sizes, kernel, strides, pads, extra, dilations = (
        as_tuple(v, ndim, n) for v, n in zip(values, names, strict=True)
    )
    steps = ["n_out = (n - 1)s - 2p + d(k - 1) + output_padding + 1"]
    rows = list(zip(sizes, strides, pads, dilations, kernel, extra, output, strict=True))
    for axes, (n, s, p, d, k, op, out) in group_axes(rows):
        steps.append(f"{axes}: ({n} - 1)*{s} - 2*{p} + {d}*({k} - 1) + {op} + 1 = {out}")
    title = f"ConvTranspose{ndim}d: input {format_value(sizes)}"
    title += f" x {in_channels}" if in_channels is not None else ""
    title += (
        f", kernel {format_value(kernel)}, stride {_compact(strides)}, padding {_compact(pads)}"
    )
    if any(op != 0 for op in extra):
        title += f", output_padding {_compact(extra)}"
    if any(d != 1 for d in dilations):
        title += f", dilation {_compact(dilations)}"
    if out_channels is not None:
        title += f" -> {out_channels} channels"
    result: dict[str, object] = {"output_size": output}
    if in_channels is not None and out_channels is not None:
        steps.append(f"output: {format_value(output)} x {out_channels}")
        params_step, params = _params_step(in_channels, out_channels, kernel, groups, True)
        macs_steps, macs = _macs_steps(
            in_channels, out_channels, kernel, sizes, groups, batch_size, transposed=True
        )
        steps += [params_step, *macs_steps]
        result.update(params=params, macs=macs)
    return WorkedProblem(title=title, steps=steps, result=result)


def worked_params(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrSequence,
    groups: int = 1,
    bias: bool = True,
) -> WorkedProblem:
    """Parameters of a convolution (seed 000 §2.2 and §6 problem 1, seed 002 groups)."""
    kernel = as_tuple(kernel_size, spatial_ndim(kernel_size), "kernel_size")
    step_text, params = _params_step(in_channels, out_channels, kernel, groups, bias)
    title = f"Parameters of Conv {format_value(kernel)}, {in_channels} -> {out_channels} channels"
    if groups != 1:
        title += f", groups={groups}"
    return WorkedProblem(title=title, steps=[step_text], result={"params": params})


def worked_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrSequence,
    output_size: IntOrSequence,
    groups: int = 1,
    batch_size: int = 1,
) -> WorkedProblem:
    """MACs and FLOPs (= 2 x MACs) of a convolution (seed 000 §2.2 and §6 problem 3)."""
    ndim = spatial_ndim(kernel_size, output_size)
    kernel = as_tuple(kernel_size, ndim, "kernel_size")
    positions = as_tuple(output_size, ndim, "output_size")
    steps, macs = _macs_steps(in_channels, out_channels, kernel, positions, groups, batch_size)
    title = (
        f"MACs of Conv {format_value(kernel)}, {in_channels} -> {out_channels} channels, "
        f"output {format_value(positions)}"
    )
    return WorkedProblem(title=title, steps=steps, result={"macs": macs, "flops": 2 * macs})


def worked_im2col(
    batch_size: int,
    in_channels: int,
    kernel_size: IntOrSequence,
    input_size: IntOrSequence,
    stride: IntOrSequence = 1,
    padding: Padding = 0,
    dilation: IntOrSequence = 1,
    dtype: str = "float32",
) -> WorkedProblem:
    """The memory of an explicit im2col matrix (seed 002 "im2col Memory Bill").

    elements = B x C_in prod(k) x prod(out); bytes = elements x bytes per element.
    """
    output = conv_output_size(input_size, kernel_size, stride, padding, dilation)
    sizes, kernel, strides, dilations = _conv_tuples(
        input_size, kernel_size, stride, padding, dilation
    )
    steps = _conv_size_steps(sizes, kernel, strides, padding, dilations)
    elements = im2col_elements(batch_size, in_channels, kernel, output)
    width = dtype_bytes(dtype)
    total = elements * width
    steps += [
        f"elements = B x C_in prod(k) x prod(out) = {batch_size}*{in_channels}*{times(kernel)}"
        f"*{times(output)} = {elements:,}",
        f"bytes = elements x {width} ({dtype}) = {total:,} = {total / 1e9:.2f} GB "
        f"= {total / 2**30:.2f} GiB",
    ]
    title = (
        f"im2col of B={batch_size}, C_in={in_channels}, {format_value(sizes)} input, "
        f"kernel {format_value(kernel)}"
    )
    result: dict[str, object] = {"output_size": output, "elements": elements, "bytes": total}
    return WorkedProblem(title=title, steps=steps, result=result)


def worked_receptive_field(layers: Sequence[Mapping[str, object]]) -> WorkedProblem:
    """Receptive field, jump and start after each layer of a stack (seeds 000 §6, 002, 003).

    j_l = j_{l-1} s_l;  r_l = r_{l-1} + (k_eff - 1) j_{l-1};
    a_l = a_{l-1} + ((k_eff - 1)/2 - p_l) j_{l-1}; from r_0 = 1, j_0 = 1, a_0 = 0.5.
    Layers are dicts as in :func:`~cnnkit.arith.receptive_field.receptive_field_table`.
    """
    return receptive_field_steps(layers)


def seed_problems() -> list[WorkedProblem]:
    """The seeds' worked problems, computed: 000 §6 (three problems), 002's im2col bill,
    003's LeNet receptive fields, and 000 §2.3's and 001's examples.

    Where a seed's printed number is approximate or wrong, ``note`` says what it claimed.
    """
    from cnnkit.arith.seed_problems import build_seed_problems

    return build_seed_problems()
