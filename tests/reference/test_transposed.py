"""conv_transpose2d and its backward against torch.nn.functional.conv_transpose2d and autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.arith.conv import conv_transpose_output_size
from cnnkit.errors import ConfigError, ShapeError
from cnnkit.reference import conv_transpose2d, conv_transpose2d_backward

TOLERANCE = dict(rtol=1e-10, atol=1e-10)


@st.composite
def transposed_cases(draw):
    groups = draw(st.integers(1, 3))
    in_channels, out_per_group = groups * draw(st.integers(1, 3)), draw(st.integers(1, 3))
    axes = []
    for _ in range(2):
        kernel, stride = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        dilation, padding = draw(st.integers(1, 3)), draw(st.integers(0, 3))
        extra = draw(st.integers(0, max(stride, dilation) - 1))
        size = draw(st.integers(1, 6))
        axes.append((size, kernel, stride, padding, extra, dilation))
    (h, kh, sh, ph, oh, dh), (w, kw, sw, pw, ow, dw) = axes
    # keep only configurations with a non-empty output (torch refuses the others)
    out = [(n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, k, s, p, o, d in axes]
    if min(out) < 1:
        ph, pw = 0, 0
    generator = torch.Generator().manual_seed(draw(st.integers(0, 1000)))
    x = torch.randn(draw(st.integers(1, 2)), in_channels, h, w, generator=generator,
                    dtype=torch.float64)  # fmt: skip
    weight = torch.randn(in_channels, out_per_group, kh, kw, generator=generator,
                         dtype=torch.float64)  # fmt: skip
    bias = torch.randn(groups * out_per_group, generator=generator, dtype=torch.float64)
    arguments = dict(stride=(sh, sw), padding=(ph, pw), output_padding=(oh, ow),
                     dilation=(dh, dw), groups=groups)  # fmt: skip
    return x, weight, bias, arguments


@settings(max_examples=60)
@given(case=transposed_cases(), method=st.sampled_from(["loop", "im2col", "fft"]))
def test_forward_matches_torch(case, method):
    x, weight, bias, arguments = case
    expected = F.conv_transpose2d(x, weight, bias, **arguments)
    got = conv_transpose2d(x, weight, bias, **arguments, method=method)
    torch.testing.assert_close(got, expected, **TOLERANCE)


@settings(max_examples=60)
@given(case=transposed_cases())
def test_backward_formulas_match_autograd(case):
    x, weight, bias, arguments = case
    x, weight, bias = (t.clone().requires_grad_(True) for t in (x, weight, bias))
    y = F.conv_transpose2d(x, weight, bias, **arguments)
    grad_out = torch.randn(y.shape, generator=torch.Generator().manual_seed(2), dtype=y.dtype)
    y.backward(grad_out)
    grad_x, grad_w, grad_b = conv_transpose2d_backward(grad_out, x.detach(), weight.detach(),
                                                       **arguments)  # fmt: skip
    torch.testing.assert_close(grad_x, x.grad, **TOLERANCE)
    torch.testing.assert_close(grad_w, weight.grad, **TOLERANCE)
    torch.testing.assert_close(grad_b, bias.grad, **TOLERANCE)


def test_output_padding_must_be_smaller_than_stride_or_dilation_like_torch():
    x, weight = torch.randn(1, 2, 4, 4), torch.randn(2, 3, 3, 3)
    with pytest.raises(RuntimeError):
        F.conv_transpose2d(x, weight, stride=2, output_padding=2)
    with pytest.raises(ConfigError) as analyzer:
        conv_transpose_output_size((4, 4), 3, stride=2, output_padding=2)
    with pytest.raises(ConfigError) as reference:
        conv_transpose2d(x, weight, stride=2, output_padding=2)
    assert str(reference.value) == f"conv_transpose2d: {analyzer.value}"


def test_weight_must_match_input_channels():
    with pytest.raises(ShapeError, match="expects 3 input channels, input has 2"):
        conv_transpose2d(torch.randn(1, 2, 4, 4), torch.randn(3, 3, 3, 3))
