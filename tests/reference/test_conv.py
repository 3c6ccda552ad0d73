"""conv2d (every method) and conv2d_backward against torch.nn.functional.conv2d and autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.arith.conv import conv_output_size
from cnnkit.errors import ConfigError, ShapeError, UnknownNameError, UnsupportedError
from cnnkit.reference import conv2d, conv2d_backward, im2col
from cnnkit.reference._geometry import conv_geometry
from tests.reference._strategies import conv_cases

TOLERANCE = dict(rtol=1e-10, atol=1e-10)  # float64


@settings(max_examples=60)
@given(case=conv_cases(), method=st.sampled_from(["loop", "im2col", "fft"]))
def test_forward_matches_torch(case, method):
    x, weight, bias = case.tensors()
    expected = F.conv2d(x, weight, bias, **case.arguments)
    got = conv2d(x, weight, bias, **case.arguments, method=method)
    torch.testing.assert_close(got, expected, **TOLERANCE)


@settings(max_examples=40)
@given(case=conv_cases(square3=True))
def test_winograd_matches_torch(case):
    x, weight, bias = case.tensors()
    expected = F.conv2d(x, weight, bias, **case.arguments)
    torch.testing.assert_close(conv2d(x, weight, bias, **case.arguments, method="winograd"),
                               expected, **TOLERANCE)  # fmt: skip


@settings(max_examples=60)
@given(case=conv_cases())
def test_backward_formulas_match_autograd(case):
    x, weight, bias = case.tensors()
    x.requires_grad_(True)
    weight.requires_grad_(True)
    bias = torch.zeros(case.out_channels, dtype=x.dtype, requires_grad=True)
    y = F.conv2d(x, weight, bias, **case.arguments)
    grad_out = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
    y.backward(grad_out)
    grad_x, grad_w, grad_b = conv2d_backward(grad_out, x.detach(), weight.detach(),
                                             **case.arguments)  # fmt: skip
    torch.testing.assert_close(grad_x, x.grad, **TOLERANCE)
    torch.testing.assert_close(grad_w, weight.grad, **TOLERANCE)
    torch.testing.assert_close(grad_b, bias.grad, **TOLERANCE)


@settings(max_examples=40)
@given(case=conv_cases())
def test_im2col_equals_torch_unfold(case):
    x, weight, _ = case.tensors()
    geometry = conv_geometry("test", x, weight, case.stride, case.padding, case.dilation,
                             case.groups)  # fmt: skip
    expected = F.unfold(x, case.kernel_size, case.dilation, case.padding, case.stride)
    torch.testing.assert_close(im2col(x, geometry), expected, rtol=0, atol=0)


@pytest.mark.parametrize("method", ["loop", "im2col", "fft", "winograd"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_lower_precision_dtypes_follow_torch(method, dtype):
    x = torch.randn(2, 4, 9, 7).to(dtype)
    weight = torch.randn(6, 2, 3, 3).to(dtype)
    got = conv2d(x, weight, None, padding=1, groups=2, method=method)
    expected = F.conv2d(x.double(), weight.double(), None, padding=1, groups=2)
    assert got.dtype == dtype
    tolerance = {torch.float32: 1e-4, torch.float16: 0.05, torch.bfloat16: 0.25}[dtype]
    torch.testing.assert_close(got.double(), expected, rtol=tolerance, atol=tolerance)


@settings(max_examples=80)
@given(
    size=st.integers(1, 6), kernel=st.integers(1, 6), stride=st.integers(1, 3),
    padding=st.integers(0, 2), dilation=st.integers(1, 3),
)  # fmt: skip
def test_refuses_exactly_what_torch_refuses_with_the_analyzers_error(
    size, kernel, stride, padding, dilation
):
    x, weight = torch.randn(1, 2, size, size), torch.randn(3, 2, kernel, kernel)
    arguments = dict(stride=stride, padding=padding, dilation=dilation)
    try:
        F.conv2d(x, weight, **arguments)
    except RuntimeError:
        with pytest.raises(ShapeError) as analyzer:
            conv_output_size((size, size), kernel, stride, padding, dilation)
        with pytest.raises(ShapeError) as reference:
            conv2d(x, weight, **arguments, method="im2col")
        message = str(reference.value)
        assert message.startswith("conv2d: ") and str(analyzer.value) in message
        assert "\n" not in message
    else:
        conv2d(x, weight, **arguments, method="im2col")


@pytest.mark.parametrize(
    ("weight_shape", "groups", "error", "words"),
    [
        ((4, 2, 3, 3), 2, ShapeError, "expects 4 input channels"),
        ((4, 2, 3, 3), 4, ConfigError, "in_channels=6 is not divisible by groups=4"),
        ((5, 3, 3, 3), 2, ConfigError, "out_channels=5 is not divisible by groups=2"),
        ((4, 6, 3), 1, ShapeError, "weight must be 4-D"),
    ],
)
def test_channel_and_group_errors_name_the_cause(weight_shape, groups, error, words):
    x = torch.randn(1, 6, 8, 8)
    with pytest.raises(error, match=words):
        conv2d(x, torch.randn(weight_shape), groups=groups)
    with pytest.raises(RuntimeError):  # torch refuses the same call
        F.conv2d(x, torch.randn(weight_shape), groups=groups)


def test_argument_errors_are_one_line_config_errors():
    x, weight = torch.randn(1, 2, 8, 8), torch.randn(3, 2, 3, 3)
    with pytest.raises(ConfigError, match="stride must be >= 1"):
        conv2d(x, weight, stride=0)
    with pytest.raises(ConfigError, match="padding must be an integer or a pair"):
        conv2d(x, weight, padding=(1, 2, 3))
    with pytest.raises(ConfigError, match="input must be a floating-point tensor"):
        conv2d(x.long(), weight)
    with pytest.raises(ShapeError, match=r"bias has shape \(2,\), expected \(3,\)"):
        conv2d(x, weight, torch.randn(2))
    with pytest.raises(UnknownNameError, match="did you mean: im2col"):
        conv2d(x, weight, method="im2co")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kernel", "arguments", "parameter"),
    [(5, {}, "kernel_size"), (3, {"stride": 2}, "stride"), (3, {"dilation": 2}, "dilation"),
     ((3, 1), {}, "kernel_size")],
)  # fmt: skip
def test_winograd_refuses_other_shapes_naming_the_parameter(kernel, arguments, parameter):
    kernel = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    x, weight = torch.randn(1, 2, 12, 12), torch.randn(3, 2, *kernel)
    with pytest.raises(UnsupportedError, match=f"{parameter} must be") as error:
        conv2d(x, weight, method="winograd", **arguments)
    assert "F(2x2, 3x3)" in str(error.value) and "\n" not in str(error.value)


def test_backward_checks_the_gradient_shape():
    x, weight = torch.randn(1, 2, 8, 8), torch.randn(3, 2, 3, 3)
    with pytest.raises(ShapeError, match=r"grad_out has shape .*expected \(1, 3, 6, 6\)"):
        conv2d_backward(torch.randn(1, 3, 8, 8), x, weight)
