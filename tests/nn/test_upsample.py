"""Upsamplers: shapes, ICNR's checkerboard-free start, and the checkerboard they avoid (002)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.nn import PixelShuffleUpsample, ResizeConvUpsample


@settings(max_examples=30)
@given(r=st.integers(1, 4), h=st.integers(1, 8), w=st.integers(1, 8))
def test_pixel_shuffle_shape_and_icnr_start(r, h, w):
    """With ICNR the initial output equals nearest-neighbour upsampling of one conv's output."""
    torch.manual_seed(0)
    up = PixelShuffleUpsample(3, 2, scale_factor=r)
    x = torch.randn(1, 3, h, w)
    out = up(x)
    assert out.shape == (1, 2, h * r, w * r)
    # the conv that ICNR repeats: every r^2-th output channel of up.conv
    base = F.conv2d(x, up.conv.weight[:: r * r], up.conv.bias[:: r * r], padding=1)
    torch.testing.assert_close(out, F.interpolate(base, scale_factor=r, mode="nearest"))


def test_without_icnr_cells_differ():
    torch.manual_seed(0)
    out = PixelShuffleUpsample(3, 2, scale_factor=2, icnr=False)(torch.randn(1, 3, 4, 4))
    assert not torch.allclose(out[..., 0::2, 0::2], out[..., 1::2, 0::2])


@settings(max_examples=12)
@given(r=st.integers(1, 3), mode=st.sampled_from(["nearest", "bilinear"]))
def test_resize_conv_is_conv_of_the_resized_input(r, mode):
    up = ResizeConvUpsample(2, 4, scale_factor=r, mode=mode)
    x = torch.randn(1, 2, 5, 6)
    align = False if mode == "bilinear" else None
    expected = up.conv(F.interpolate(x, scale_factor=r, mode=mode, align_corners=align))
    assert up(x).shape == (1, 4, 5 * r, 6 * r)
    torch.testing.assert_close(up(x), expected)


def test_constant_input_no_checkerboard_unlike_a_transposed_conv():
    """002: a stride-2 kernel-3 transposed conv covers outputs 1, 2, 1, 2, ... times; with all
    weights equal a constant input shows that pattern. Resize+conv stays constant inside."""
    x = torch.ones(1, 1, 6, 6)
    transposed = nn.ConvTranspose2d(1, 1, 3, stride=2, bias=False)
    nn.init.constant_(transposed.weight, 1.0)
    row = transposed(x)[0, 0, 4, 2:9]
    assert row.tolist() == [4.0, 2.0, 4.0, 2.0, 4.0, 2.0, 4.0]
    up = ResizeConvUpsample(1, 1, scale_factor=2)
    nn.init.constant_(up.conv.weight, 1.0)
    nn.init.zeros_(up.conv.bias)
    inner = up(x)[0, 0, 1:-1, 1:-1]
    assert torch.all(inner == 9.0)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="scale_factor"):
        PixelShuffleUpsample(3, 3, scale_factor=0)
    with pytest.raises(ConfigError, match="odd"):
        ResizeConvUpsample(3, 3, kernel_size=2)
    with pytest.raises(ConfigError, match="mode"):
        ResizeConvUpsample(3, 3, mode="bicubic")
