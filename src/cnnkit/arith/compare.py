"""Seed 001's comparisons, computed: convolution types, and stacked small kernels vs one large.

Both return dataclasses; the numbers come from :mod:`cnnkit.arith.conv` and
:mod:`cnnkit.arith.receptive_field`, so they agree with PyTorch's modules (see the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnkit.arith._axes import (
    IntOrSequence,
    as_int,
    as_tuple,
    product,
    require_at_least,
    spatial_ndim,
)
from cnnkit.arith.conv import conv_macs, conv_params
from cnnkit.arith.receptive_field import Field, step

__all__ = [
    "ConvCost",
    "ConvTypeComparison",
    "StackedKernelComparison",
    "compare_conv_types",
    "compare_stacked_kernels",
]


@dataclass(frozen=True)
class ConvCost:
    """Parameters and MACs of one way to map C_in to C_out channels, and their ratio to standard."""

    name: str
    params: int
    macs: int
    params_ratio: float
    macs_ratio: float


@dataclass(frozen=True)
class ConvTypeComparison:
    """Standard vs depthwise-separable vs grouped convolution for the same channels and kernel."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    groups: int
    output_size: tuple[int, ...]
    bias: bool
    standard: ConvCost
    depthwise_separable: ConvCost
    grouped: ConvCost

    @property
    def rows(self) -> tuple[ConvCost, ConvCost, ConvCost]:
        return (self.standard, self.depthwise_separable, self.grouped)


def compare_conv_types(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrSequence,
    groups: int,
    output_size: IntOrSequence = (1, 1),
    bias: bool = True,
) -> ConvTypeComparison:
    """Params and MACs of standard, depthwise-separable and grouped convolution (seed 001).

    standard:            C_out C_in prod(k) weights, MACs = prod(out) C_out C_in prod(k)
    depthwise-separable: C_in prod(k) + C_out C_in weights (seed 002), MACs likewise per position
    grouped (g):         C_out (C_in/g) prod(k) weights, MACs = prod(out) C_out (C_in/g) prod(k)
    plus C_out biases each (C_in + C_out for the separable pair) when ``bias``, as in seed 001's
    ``compare_conv_types(c_in=64, c_out=128, k=3)`` with g = 8. The default ``output_size``
    (1, 1) counts MACs per output position of a 2-D layer; every layer keeps the output size.
    """
    ndim = spatial_ndim(kernel_size, output_size)
    kernel = as_tuple(kernel_size, ndim, "kernel_size")
    positions = as_tuple(output_size, ndim, "output_size")
    standard_params = conv_params(in_channels, out_channels, kernel, bias=bias)
    standard_macs = conv_macs(in_channels, out_channels, kernel, positions)

    def cost(name: str, params: int, macs: int) -> ConvCost:
        return ConvCost(name, params, macs, params / standard_params, macs / standard_macs)

    separable_params = conv_params(
        in_channels, in_channels, kernel, groups=in_channels, bias=bias
    ) + conv_params(in_channels, out_channels, (1,) * ndim, bias=bias)
    separable_macs = conv_macs(
        in_channels, in_channels, kernel, positions, groups=in_channels
    ) + conv_macs(in_channels, out_channels, (1,) * ndim, positions)
    return ConvTypeComparison(
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=kernel,
        groups=groups,
        output_size=positions,
        bias=bias,
        standard=cost("standard", standard_params, standard_macs),
        depthwise_separable=cost("depthwise-separable", separable_params, separable_macs),
        grouped=cost(
            f"grouped (groups={groups})",
            conv_params(in_channels, out_channels, kernel, groups=groups, bias=bias),
            conv_macs(in_channels, out_channels, kernel, positions, groups=groups),
        ),
    )


@dataclass(frozen=True)
class StackedKernelComparison:
    """``depth`` stacked k x k convs (stride 1) vs one conv with the same receptive field.

    ``*_weights_per_channel_pair`` are the weights per C^2 (C channels in and out, no bias):
    depth k^2 vs k_single^2. ``*_params`` and ``*_macs`` are for ``channels`` channels and the
    given output size (bias included in params when ``bias``).
    """

    depth: int
    kernel_size: tuple[int, ...]
    single_kernel_size: tuple[int, ...]
    channels: int
    output_size: tuple[int, ...]
    stacked_rf: tuple[int, ...]
    single_rf: tuple[int, ...]
    stacked_weights_per_channel_pair: int
    single_weights_per_channel_pair: int
    stacked_params: int
    single_params: int
    stacked_macs: int
    single_macs: int

    @property
    def params_saving(self) -> float:
        """1 - stacked/single parameters (seed 003: 1 - 18/25 = 28% for two 3x3 vs one 5x5)."""
        return 1 - self.stacked_params / self.single_params


def compare_stacked_kernels(
    depth: int = 2,
    kernel_size: IntOrSequence = (3, 3),
    channels: int = 1,
    output_size: IntOrSequence = (1, 1),
    bias: bool = False,
) -> StackedKernelComparison:
    """n stacked k x k convolutions vs one (n(k - 1) + 1) x (n(k - 1) + 1) convolution (seed 001).

    Receptive field of the stack: r = 1 + n(k - 1) (seed 002's recursion with stride 1), equal
    to the single kernel's. Weights per C^2: n k^2 vs (n(k - 1) + 1)^2, e.g. 18 C^2 vs 25 C^2
    for two 3x3 (seed 001, 003) and 27 C^2 vs 49 C^2 for three 3x3 vs 7x7 (seed 001). MACs
    scale the same way when every layer keeps the output size ('same' padding).
    """
    depth = as_int(depth, "depth")
    require_at_least((depth,), 1, "depth")
    ndim = spatial_ndim(kernel_size, output_size)
    kernel = as_tuple(kernel_size, ndim, "kernel_size")
    positions = as_tuple(output_size, ndim, "output_size")
    field = Field.input(ndim)
    for _ in range(depth):
        field = step(field, kernel)
    single_kernel = tuple(depth * (k - 1) + 1 for k in kernel)
    single_field = step(Field.input(ndim), single_kernel)
    stacked_weights = depth * product(kernel)
    single_weights = product(single_kernel)
    return StackedKernelComparison(
        depth=depth,
        kernel_size=kernel,
        single_kernel_size=single_kernel,
        channels=channels,
        output_size=positions,
        stacked_rf=tuple(int(r) for r in field.rf),
        single_rf=tuple(int(r) for r in single_field.rf),
        stacked_weights_per_channel_pair=stacked_weights,
        single_weights_per_channel_pair=single_weights,
        stacked_params=depth * conv_params(channels, channels, kernel, bias=bias),
        single_params=conv_params(channels, channels, single_kernel, bias=bias),
        stacked_macs=depth * conv_macs(channels, channels, kernel, positions),
        single_macs=conv_macs(channels, channels, single_kernel, positions),
    )
