"""Transposed-conv coverage against torch's conv_transpose on ones, and the mitigations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import ConfigError
from cnnkit.lab import checkerboard, transposed_coverage


@settings(max_examples=60)
@given(length=st.integers(1, 12), kernel=st.integers(1, 6), stride=st.integers(1, 4),
       padding=st.integers(0, 2))  # fmt: skip
def test_coverage_formula_equals_torch_conv_transpose_of_ones(length, kernel, stride, padding):
    out = (length - 1) * stride - 2 * padding + kernel
    if out < 1:
        return
    ones = torch.ones(1, 1, length, dtype=torch.float64)
    expected = F.conv_transpose1d(ones, torch.ones(1, 1, kernel, dtype=torch.float64),
                                  stride=stride, padding=padding)  # fmt: skip
    assert transposed_coverage(length, kernel, stride, padding) == tuple(
        int(v) for v in expected.flatten().tolist()
    )


def test_seed002_pattern_for_k3_s2_is_1_2_1_2_and_k4_s2_is_uniform():
    result = checkerboard(3, 2)
    assert result.measured == result.formula
    assert set(result.interior) == {1, 2}
    assert all(a != b for a, b in zip(result.interior, result.interior[1:], strict=False))
    first = result.upsamplers[0]
    assert first.interior_values == (1.0, 2.0, 4.0) and first.max_over_min == 4.0
    assert not first.uniform
    # every mitigation of 002 covers the interior evenly
    assert all(u.uniform for u in result.upsamplers[1:]) and len(result.upsamplers) == 4
    assert set(checkerboard(4, 2).interior) == {2}


@settings(max_examples=25, deadline=None)
@given(kernel=st.integers(1, 6), stride=st.integers(1, 4))
def test_interior_is_uniform_exactly_when_the_stride_divides_the_kernel(kernel, stride):
    result = checkerboard(kernel, stride, size=8)
    assert result.upsamplers[0].uniform == (kernel % stride == 0)
    assert all(u.uniform for u in result.upsamplers[1:])


def test_mitigation_values_match_torch():
    result = checkerboard(3, 2)
    ones = torch.ones(1, 1, 8, 8)
    resized = F.interpolate(ones, scale_factor=2, mode="nearest")
    resize_conv = F.conv2d(resized, torch.ones(1, 1, 3, 3), padding=1)
    shuffle = F.pixel_shuffle(F.conv2d(ones, torch.ones(4, 1, 3, 3), padding=1), 2)
    by_name = {u.method: u for u in result.upsamplers}
    assert by_name["nearest resize x2 + conv 3x3"].interior_values == (
        float(resize_conv[0, 0, 1:-1, 1:-1].unique()),
    )
    assert by_name["conv 3x3 to 4 channels + pixel shuffle x2"].interior_values == (
        float(shuffle[0, 0, 2:-2, 2:-2].unique()),
    )


def test_too_small_an_input_is_refused():
    with pytest.raises(ConfigError, match="size 1 is too small: transposed conv k=5 s=1"):
        checkerboard(5, 1, size=1)
