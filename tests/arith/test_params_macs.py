"""Parameters vs real modules' numel, MACs vs torch.utils.flop_counter (FLOPs / 2)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.arith import (
    batch_norm_buffers,
    batch_norm_params,
    conv_macs,
    conv_macs_from_shapes,
    conv_output_size,
    conv_params,
    conv_transpose_macs,
    depthwise_params,
    depthwise_separable_params,
    group_norm_params,
    instance_norm_buffers,
    instance_norm_params,
    layer_norm_params,
    linear_macs,
    linear_macs_from_shape,
    linear_params,
)
from cnnkit.errors import ConfigError
from tests.arith.strategies import per_axis

CONV_MODULES = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
TRANSPOSE_MODULES = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
BATCH_NORMS = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def numel(tensors) -> int:
    return sum(t.numel() for t in tensors)


def flop_counter_macs(function, *args, **kwargs) -> tuple[int, torch.Tensor]:
    with FlopCounterMode(display=False) as counter:
        output = function(*args, **kwargs)
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2, output


@st.composite
def channel_configs(draw):
    groups = draw(st.integers(1, 4))
    in_channels = groups * draw(st.integers(1, 4))
    out_channels = groups * draw(st.integers(1, 4))
    ndim = draw(st.integers(1, 3))
    kernel = per_axis(draw, ndim, 1, 4)
    return in_channels, out_channels, kernel, groups, draw(st.booleans())


@settings(max_examples=200)
@given(channel_configs(), st.booleans())
def test_conv_params_equal_module_numel(config, transposed):
    in_channels, out_channels, kernel, groups, bias = config
    modules = TRANSPOSE_MODULES if transposed else CONV_MODULES
    module = modules[len(kernel)](
        in_channels, out_channels, kernel, groups=groups, bias=bias, device="meta"
    )
    assert conv_params(in_channels, out_channels, kernel, groups, bias) == numel(
        module.parameters()
    )


@settings(max_examples=100)
@given(st.integers(1, 8), st.integers(1, 3), st.integers(1, 5), st.booleans())
def test_depthwise_and_separable_params_equal_modules(in_channels, multiplier, kernel, bias):
    depthwise = nn.Conv2d(
        in_channels, in_channels * multiplier, kernel, groups=in_channels, bias=bias, device="meta"
    )
    assert depthwise_params(in_channels, (kernel, kernel), multiplier, bias) == numel(
        depthwise.parameters()
    )
    out_channels = in_channels + multiplier
    pair = nn.Sequential(
        nn.Conv2d(in_channels, in_channels, kernel, groups=in_channels, bias=bias),
        nn.Conv2d(in_channels, out_channels, 1, bias=bias),
    ).to("meta")
    assert depthwise_separable_params(in_channels, out_channels, (kernel, kernel), bias) == numel(
        pair.parameters()
    )


def test_groups_must_divide_channels_as_pytorch_requires():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(ConfigError, match="out_channels=6 is not divisible by groups=4"):
        conv_params(4, 6, 3, groups=4)
    with pytest.raises(ConfigError, match="groups must be >= 1"):
        conv_params(4, 4, 3, groups=0)


@st.composite
def conv_mac_configs(draw):
    in_channels, out_channels, kernel, groups, _ = draw(channel_configs())
    ndim = len(kernel)
    stride = per_axis(draw, ndim, 1, 3)
    dilation = per_axis(draw, ndim, 1, 2)
    padding = per_axis(draw, ndim, 0, 2)
    # an input large enough for the kernel, so the config is valid
    sizes = tuple(
        d * (k - 1) + 1 + draw(st.integers(0, 12 // ndim))
        for k, d in zip(kernel, dilation, strict=True)
    )
    batch = draw(st.integers(1, 3))
    return in_channels, out_channels, kernel, groups, stride, padding, dilation, sizes, batch


CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@settings(max_examples=300)
@given(conv_mac_configs())
def test_conv_macs_equal_flop_counter(config):
    in_channels, out_channels, kernel, groups, stride, padding, dilation, sizes, batch = config
    x = torch.empty(batch, in_channels, *sizes, device="meta")
    w = torch.empty(out_channels, in_channels // groups, *kernel, device="meta")
    macs, y = flop_counter_macs(CONV[len(kernel)], x, w, None, stride, padding, dilation, groups)
    assert tuple(y.shape[2:]) == conv_output_size(sizes, kernel, stride, padding, dilation)
    assert conv_macs_from_shapes(x.shape, w.shape, y.shape) == macs
    assert conv_macs(in_channels, out_channels, kernel, y.shape[2:], groups, batch) == macs


@settings(max_examples=300)
@given(conv_mac_configs())
def test_conv_transpose_macs_equal_flop_counter(config):
    """The transposed count uses the INPUT positions (flop_counter's rule)."""
    in_channels, out_channels, kernel, groups, stride, _, dilation, sizes, batch = config
    x = torch.empty(batch, in_channels, *sizes, device="meta")
    w = torch.empty(in_channels, out_channels // groups, *kernel, device="meta")
    macs, y = flop_counter_macs(
        CONV_TRANSPOSE[len(kernel)], x, w, None, stride, 0, 0, groups, dilation
    )
    assert conv_macs_from_shapes(x.shape, w.shape, y.shape, transposed=True) == macs
    assert conv_transpose_macs(in_channels, out_channels, kernel, sizes, groups, batch) == macs


@settings(max_examples=100)
@given(st.integers(1, 9), st.integers(1, 9), st.lists(st.integers(1, 4), max_size=3))
def test_linear_macs_equal_flop_counter(in_features, out_features, leading):
    x = torch.empty(*leading, in_features, device="meta")
    w = torch.empty(out_features, in_features, device="meta")
    macs, _ = flop_counter_macs(F.linear, x, w, torch.empty(out_features, device="meta"))
    rows = 1
    for dim in leading:
        rows *= dim
    assert linear_macs(in_features, out_features, rows) == macs
    assert linear_macs_from_shape(x.shape, out_features) == macs


@settings(max_examples=50)
@given(st.integers(1, 64), st.integers(1, 64), st.booleans())
def test_linear_params_equal_module_numel(in_features, out_features, bias):
    module = nn.Linear(in_features, out_features, bias=bias, device="meta")
    assert linear_params(in_features, out_features, bias) == numel(module.parameters())


@settings(max_examples=60)
@given(st.integers(1, 3), st.integers(1, 32), st.booleans(), st.booleans())
def test_batch_and_instance_norm_params_and_buffers(ndim, channels, affine, track):
    module = BATCH_NORMS[ndim](channels, affine=affine, track_running_stats=track)
    assert batch_norm_params(channels, affine) == numel(module.parameters())
    assert batch_norm_buffers(channels, track) == numel(module.buffers())
    instance = nn.InstanceNorm2d(channels, affine=affine, track_running_stats=track)
    assert instance_norm_params(channels, affine) == numel(instance.parameters())
    assert instance_norm_buffers(channels, track) == numel(instance.buffers())


@settings(max_examples=60)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.booleans(), st.booleans())
def test_layer_norm_params(shape, affine, bias):
    module = nn.LayerNorm(shape, elementwise_affine=affine, bias=bias)
    assert layer_norm_params(tuple(shape), affine, bias) == numel(module.parameters())


@settings(max_examples=60)
@given(st.integers(1, 6), st.integers(1, 24), st.booleans())
def test_group_norm_params_and_divisibility(groups, channels, affine):
    try:
        module = nn.GroupNorm(groups, channels, affine=affine)
    except ValueError:
        with pytest.raises(ConfigError, match="not divisible by num_groups"):
            group_norm_params(channels, affine, num_groups=groups)
        return
    assert group_norm_params(channels, affine, num_groups=groups) == numel(module.parameters())
