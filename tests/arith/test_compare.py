"""Seed 001's comparisons vs real modules (params), FlopCounterMode (MACs) and gradients (rf)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.arith.compare import compare_conv_types, compare_stacked_kernels


def params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def macs(module: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


@settings(max_examples=60)
@given(
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 4),
    st.sampled_from([1, 3, 5]),
    st.integers(1, 6),
    st.booleans(),
)
def test_conv_types_equal_modules(groups, in_per_group, out_per_group, kernel, size, bias):
    in_channels, out_channels = groups * in_per_group, groups * out_per_group
    padding = kernel // 2  # keeps the output size, as the comparison assumes
    standard = nn.Conv2d(in_channels, out_channels, kernel, padding=padding, bias=bias)
    separable = nn.Sequential(
        nn.Conv2d(in_channels, in_channels, kernel, padding=padding, groups=in_channels, bias=bias),
        nn.Conv2d(in_channels, out_channels, 1, bias=bias),
    )
    grouped = nn.Conv2d(
        in_channels, out_channels, kernel, padding=padding, groups=groups, bias=bias
    )
    x = torch.empty(1, in_channels, size, size, device="meta")
    result = compare_conv_types(in_channels, out_channels, kernel, groups, (size, size), bias)
    for row, module in zip(result.rows, (standard, separable, grouped), strict=True):
        module.to("meta")
        assert row.params == params(module)
        assert row.macs == macs(module, x)
    assert result.standard.params_ratio == 1.0


def test_seed_001_conv_types_64_to_128_3x3_groups_8():
    result = compare_conv_types(64, 128, 3, groups=8)
    assert [row.params for row in result.rows] == [73_856, 8_960, 9_344]
    assert f"{result.depthwise_separable.params_ratio:.2%}" == "12.13%"
    assert f"{result.grouped.params_ratio:.2%}" == "12.65%"


@pytest.mark.parametrize(("depth", "stacked", "single"), [(2, 18, 25), (3, 27, 49)])
def test_seed_001_stacked_3x3_vs_one_large_kernel(depth, stacked, single):
    """Two 3x3 = 18 C^2 vs 25 C^2; three 3x3 = 27 C^2 vs 49 C^2; same receptive field."""
    channels = 4
    result = compare_stacked_kernels(depth, channels=channels, output_size=(6, 6))
    assert (result.stacked_weights_per_channel_pair, result.single_weights_per_channel_pair) == (
        stacked,
        single,
    )
    stack = nn.Sequential(
        *[nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(depth)]
    )
    one = nn.Conv2d(channels, channels, 2 * depth + 1, padding=depth, bias=False)
    assert (result.stacked_params, result.single_params) == (params(stack), params(one))
    x = torch.zeros(1, channels, 6, 6)
    assert (result.stacked_macs, result.single_macs) == (macs(stack, x), macs(one, x))
    # receptive field, measured: positive weights, gradient of the centre output
    for module, expected in ((stack, result.stacked_rf), (one, result.single_rf)):
        for p in module.parameters():
            p.data = torch.rand_like(p) + 0.1
        big = torch.zeros(1, channels, 21, 21, requires_grad=True)
        module(big)[0, 0, 10, 10].backward()
        rows = big.grad[0].abs().sum(0).sum(1).nonzero().flatten()
        assert (int(rows[-1] - rows[0] + 1),) * 2 == expected
    assert f"{result.params_saving:.0%}" == ("28%" if depth == 2 else "45%")
