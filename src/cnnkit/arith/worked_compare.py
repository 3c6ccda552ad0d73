"""Seed 001's comparisons as worked problems (capabilities A2, A7).

The numbers come from :func:`cnnkit.arith.compare.compare_conv_types` and
:func:`cnnkit.arith.compare.compare_stacked_kernels`.
"""

from __future__ import annotations

from collections.abc import Iterable

from cnnkit.arith._axes import IntOrSequence
from cnnkit.arith.compare import compare_conv_types, compare_stacked_kernels
from cnnkit.arith.worked_problem import WorkedProblem, format_value

__all__ = ["worked_compare_conv_types", "worked_stacked_kernels"]


def _kernel_text(kernel: tuple[int, ...]) -> str:
    return "*".join(str(k) for k in kernel)


def _per_axis(texts: Iterable[str]) -> str:
    """One text when every axis has the same, else each axis's joined by '; '."""
    unique = list(dict.fromkeys(texts))
    return unique[0] if len(unique) == 1 else " | ".join(unique)


def worked_compare_conv_types(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrSequence,
    groups: int,
    output_size: IntOrSequence = (1, 1),
    bias: bool = True,
) -> WorkedProblem:
    """Standard vs depthwise-separable vs grouped convolution, params and MACs (seed 001)."""
    c = compare_conv_types(in_channels, out_channels, kernel_size, groups, output_size, bias)
    k = _kernel_text(c.kernel_size)
    positions = "*".join(str(n) for n in c.output_size)
    b_out = f" + {out_channels}" if bias else ""
    b_in = f" + {in_channels}" if bias else ""
    plus = " + C_out" if bias else ""
    steps = [
        f"standard: params = C_out C_in prod(k){plus} = {out_channels}*{in_channels}*{k}{b_out}"
        f" = {c.standard.params:,}; MACs = prod(out) C_out C_in prod(k) = {positions}*"
        f"{out_channels}*{in_channels}*{k} = {c.standard.macs:,}",
        f"depthwise-separable: params = C_in prod(k){' + C_in' if bias else ''} + C_out C_in"
        f"{plus} = {in_channels}*{k}{b_in} + {out_channels}*{in_channels}{b_out} = "
        f"{c.depthwise_separable.params:,} ({c.depthwise_separable.params_ratio:.2%} of standard)"
        f"; MACs = prod(out) (C_in prod(k) + C_out C_in) = {positions}*({in_channels}*{k} + "
        f"{out_channels}*{in_channels}) = {c.depthwise_separable.macs:,} "
        f"({c.depthwise_separable.macs_ratio:.2%})",
        f"grouped: params = C_out (C_in/g) prod(k){plus} = {out_channels}*({in_channels}/"
        f"{groups})*{k}{b_out} = {c.grouped.params:,} ({c.grouped.params_ratio:.2%}); "
        f"MACs = prod(out) C_out (C_in/g) prod(k) = {c.grouped.macs:,} "
        f"({c.grouped.macs_ratio:.2%})",
    ]
    title = (
        f"Conv types, {in_channels} -> {out_channels} channels, kernel "
        f"{format_value(c.kernel_size)}, groups {groups}, output {format_value(c.output_size)}"
    )
    result: dict[str, object] = {}
    for name, row in (
        ("standard", c.standard),
        ("depthwise_separable", c.depthwise_separable),
        ("grouped", c.grouped),
    ):
        result[f"{name}_params"] = row.params
        result[f"{name}_macs"] = row.macs
    return WorkedProblem(title=title, steps=steps, result=result)


def worked_stacked_kernels(
    depth: int = 2,
    kernel_size: IntOrSequence = (3, 3),
    channels: int = 1,
    output_size: IntOrSequence = (1, 1),
) -> WorkedProblem:
    """n stacked k x k convolutions vs one kernel with the same receptive field (seed 001, 003)."""
    c = compare_stacked_kernels(depth, kernel_size, channels, output_size)
    k, single = c.kernel_size, c.single_kernel_size
    steps = [
        "receptive field of n stride-1 convs: r = 1 + n(k - 1)",
        "stacked: r = "
        + _per_axis(f"1 + {depth}*({a} - 1) = {r}" for a, r in zip(k, c.stacked_rf, strict=True))
        + f"; one {format_value(single)}: r = "
        + _per_axis(f"1 + ({a} - 1) = {r}" for a, r in zip(single, c.single_rf, strict=True)),
        f"weights per C^2: {depth}*{_kernel_text(k)} = {c.stacked_weights_per_channel_pair} vs "
        f"{_kernel_text(single)} = {c.single_weights_per_channel_pair}: "
        f"{c.params_saving:.0%} fewer",
    ]
    if channels != 1 or any(n != 1 for n in c.output_size):
        steps.append(
            f"with C = {channels}, output {format_value(c.output_size)}: params "
            f"{c.stacked_params:,} vs {c.single_params:,}; MACs {c.stacked_macs:,} vs "
            f"{c.single_macs:,}"
        )
    title = f"{depth} stacked {format_value(k)} convs vs one {format_value(single)}"
    result: dict[str, object] = {
        "stacked_rf": c.stacked_rf,
        "single_rf": c.single_rf,
        "stacked_weights_per_channel_pair": c.stacked_weights_per_channel_pair,
        "single_weights_per_channel_pair": c.single_weights_per_channel_pair,
    }
    if channels != 1 or any(n != 1 for n in c.output_size):
        result.update(
            stacked_params=c.stacked_params,
            single_params=c.single_params,
            stacked_macs=c.stacked_macs,
            single_macs=c.single_macs,
        )
    return WorkedProblem(title=title, steps=steps, result=result)
