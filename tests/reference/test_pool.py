"""max_pool2d / avg_pool2d and their backward against torch.nn.functional and autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cnnkit.arith.pool import pool_output_size
from cnnkit.errors import ConfigError, ShapeError
from cnnkit.reference import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from tests.reference._strategies import pool_cases

TOLERANCE = dict(rtol=1e-12, atol=1e-12)


def _input(case, ties: bool) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    if ties:  # few distinct values: many windows hold several equal maxima
        return torch.randint(0, 3, case.shape, generator=generator).double()
    return torch.randn(case.shape, generator=generator, dtype=torch.float64)


@settings(max_examples=80)
@given(case=pool_cases(), ties=st.booleans())
def test_max_pool_and_its_argmax_backward_match_torch(case, ties):
    arguments = dict(kernel_size=case.kernel_size, stride=case.stride, padding=case.padding,
                     dilation=case.dilation, ceil_mode=case.ceil_mode)  # fmt: skip
    x = _input(case, ties).requires_grad_(True)
    y = F.max_pool2d(x, **arguments)
    assume(torch.isfinite(y).all())  # a window inside the padding: see the test below
    grad_out = torch.randn(y.shape, generator=torch.Generator().manual_seed(4), dtype=y.dtype)
    y.backward(grad_out)
    torch.testing.assert_close(max_pool2d(x.detach(), **arguments), y, rtol=0, atol=0)
    # ties: PyTorch's CPU kernel sends the gradient to the first maximum of the window
    torch.testing.assert_close(max_pool2d_backward(grad_out, x.detach(), **arguments), x.grad,
                               **TOLERANCE)  # fmt: skip


@settings(max_examples=80)
@given(case=pool_cases(dilation_max=1), count_include_pad=st.booleans())
def test_avg_pool_and_its_backward_match_torch(case, count_include_pad):
    arguments = dict(kernel_size=case.kernel_size, stride=case.stride, padding=case.padding,
                     ceil_mode=case.ceil_mode, count_include_pad=count_include_pad)  # fmt: skip
    x = _input(case, ties=False).requires_grad_(True)
    y = F.avg_pool2d(x, **arguments)
    grad_out = torch.randn(y.shape, generator=torch.Generator().manual_seed(5), dtype=y.dtype)
    y.backward(grad_out)
    torch.testing.assert_close(avg_pool2d(x.detach(), **arguments), y, **TOLERANCE)
    torch.testing.assert_close(avg_pool2d_backward(grad_out, x.detach(), **arguments), x.grad,
                               **TOLERANCE)  # fmt: skip


def test_a_window_inside_the_padding_gives_minus_infinity_and_no_gradient():
    """Only a dilated window can miss the input (2 taps, dilation 2, padding 1 on a 1-wide input).

    Both give -inf, as the max of nothing. PyTorch's CPU backward then sends that output's
    gradient to an index past the window (here the next row's pixel); the reference drops it.
    """
    x = torch.tensor([[[[1.0], [2.0], [3.0]]]])
    arguments = dict(kernel_size=(1, 2), stride=1, padding=(0, 1), dilation=(1, 2))
    expected = F.max_pool2d(x, **arguments)
    assert torch.isinf(expected).all()
    torch.testing.assert_close(max_pool2d(x, **arguments), expected)
    grad = max_pool2d_backward(torch.ones_like(expected), x, **arguments)
    assert torch.equal(grad, torch.zeros_like(x))


def test_stride_defaults_to_kernel_size():
    x = torch.randn(1, 2, 9, 9)
    torch.testing.assert_close(max_pool2d(x, 3), F.max_pool2d(x, 3))
    torch.testing.assert_close(avg_pool2d(x, 3), F.avg_pool2d(x, 3))


def test_padding_over_half_the_kernel_is_refused_like_torch_and_the_analyzer():
    x = torch.randn(1, 1, 8, 8)
    with pytest.raises(RuntimeError):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(ConfigError) as analyzer:
        pool_output_size((8, 8), 3, padding=2)
    for op in (max_pool2d, avg_pool2d):
        with pytest.raises(ConfigError) as reference:
            op(x, 3, padding=2)
        assert str(reference.value) == f"{op.__name__}: {analyzer.value}"


def test_empty_output_and_wrong_gradient_shape_are_shape_errors():
    with pytest.raises(ShapeError, match="max_pool2d: output size would be 0"):
        max_pool2d(torch.randn(1, 1, 2, 2), 3)
    with pytest.raises(ShapeError, match=r"grad_out has shape \(1, 1, 3, 3\), expected"):
        avg_pool2d_backward(torch.randn(1, 1, 3, 3), torch.randn(1, 1, 8, 8), 2)
