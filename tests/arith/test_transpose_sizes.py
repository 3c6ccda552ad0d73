"""Transposed-convolution output sizes against PyTorch, valid and invalid configs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from cnnkit.arith import conv_transpose_output_size
from cnnkit.errors import CnnkitError, ConfigError, ShapeError
from tests.arith import torch_oracle
from tests.arith.strategies import transpose_configs


@settings(max_examples=600)
@given(transpose_configs())
def test_conv_transpose_output_size_matches_pytorch(config):
    expected = torch_oracle.conv_transpose_shape(*config.values())
    try:
        got = conv_transpose_output_size(**config)
    except CnnkitError:
        got = None
    assert got == expected


def test_seed_001_transposed_conv_doubles_8_to_16():
    # 001: ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1) on 8x8
    assert conv_transpose_output_size((8, 8), 4, stride=2, padding=1) == (16, 16)
    assert torch_oracle.conv_transpose_shape((8, 8), (4, 4), 2, 1, 0, 1) == (16, 16)


def test_output_padding_must_be_below_stride_or_dilation():
    with pytest.raises(ConfigError, match="output_padding must be smaller"):
        conv_transpose_output_size(3, 3, stride=2, output_padding=2)
    assert conv_transpose_output_size(3, 3, stride=1, dilation=3, output_padding=2) == (
        2 * 1 + 3 * 2 + 2 + 1,
    )


def test_too_much_padding_names_the_axis():
    with pytest.raises(ShapeError, match=r"output size would be -1 on axis L: \(1 - 1\)\*1"):
        conv_transpose_output_size(1, 1, padding=1)


def test_string_padding_is_refused():
    with pytest.raises(ConfigError, match="integer padding"):
        conv_transpose_output_size(4, 3, padding="same")
