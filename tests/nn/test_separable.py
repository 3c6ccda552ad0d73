"""DepthwiseSeparableConv: 002's parameter formula and equivalence with one dense conv."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import ConfigError
from cnnkit.nn import DepthwiseSeparableConv

channels = st.integers(1, 6)


@settings(max_examples=30)
@given(cin=channels, cout=channels, k=st.sampled_from([1, 3, 5]), m=st.integers(1, 3))
def test_parameters_follow_002(cin, cout, k, m):
    block = DepthwiseSeparableConv(cin, cout, k, depth_multiplier=m, bias=True, norm_layer=None)
    # depthwise C_in m k^2 + C_in m, pointwise m C_in C_out + C_out
    expected = cin * m * k * k + cin * m + m * cin * cout + cout
    assert sum(p.numel() for p in block.parameters()) == expected


@settings(max_examples=30)
@given(
    cin=channels,
    cout=channels,
    m=st.integers(1, 3),
    stride=st.integers(1, 2),
    dilation=st.integers(1, 2),
    size=st.integers(5, 9),
)
def test_equals_a_dense_conv_with_the_composed_kernel(cin, cout, m, stride, dilation, size):
    """Without norm and activation, pointwise(depthwise(x)) is one conv whose kernel is
    W[o, i] = sum_j P[o, i m + j] D[i m + j] (the factorisation that saves parameters)."""
    torch.manual_seed(0)
    block = DepthwiseSeparableConv(
        cin,
        cout,
        3,
        stride=stride,
        dilation=dilation,
        depth_multiplier=m,
        norm_layer=None,
        activation_layer=None,
    ).double()
    depthwise = block.depthwise.weight.reshape(cin, m, 3, 3)
    pointwise = block.pointwise.weight.reshape(cout, cin, m)
    dense = torch.einsum("oim,imhw->oihw", pointwise, depthwise)
    x = torch.randn(2, cin, size, size, dtype=torch.float64)
    expected = F.conv2d(x, dense, stride=stride, padding=dilation, dilation=dilation)
    torch.testing.assert_close(block(x), expected)


def test_default_block_has_norm_and_relu_and_keeps_the_size():
    block = DepthwiseSeparableConv(4, 8)
    assert block(torch.randn(2, 4, 7, 7)).shape == (2, 8, 7, 7)
    assert isinstance(block.depthwise_norm, torch.nn.BatchNorm2d)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="depth_multiplier"):
        DepthwiseSeparableConv(4, 8, depth_multiplier=0)
