"""An empty batch (N = 0) through every reference op, as torch does it: the output has torch's
shape and dtype, and every backward gives autograd's gradients (zeros for the weights).

Oracle: ``torch.nn.functional`` and autograd on the same empty tensors. Configurations are the
hypothesis strategies of the other reference tests, with the batch set to 0.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit import reference as R
from tests.reference._strategies import conv_cases, pool_cases
from tests.reference.test_transposed import transposed_cases


def _same(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert got.shape == expected.shape and got.dtype == expected.dtype
    torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True)


def _leaf(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.detach().clone().requires_grad_(True)


@settings(max_examples=25)
@given(case=conv_cases(), method=st.sampled_from(R.METHODS))
def test_conv2d_of_an_empty_batch_matches_torch_forward_and_backward(case, method):
    if method == "winograd":
        case = dataclasses.replace(case, kernel_size=(3, 3), stride=(1, 1), dilation=(1, 1),
                                   size=(case.size[0] + 3, case.size[1] + 3))  # fmt: skip
    x, weight, bias = dataclasses.replace(case, batch=0).tensors()
    x, weight, bias = _leaf(x), _leaf(weight), _leaf(bias)
    expected = F.conv2d(x, weight, bias, **case.arguments)
    _same(R.conv2d(x.detach(), weight.detach(), None if bias is None else bias.detach(),
                   **case.arguments, method=method), expected.detach())  # fmt: skip
    expected.sum().backward()
    grad_x, grad_w, grad_b = R.conv2d_backward(
        torch.ones_like(expected), x.detach(), weight.detach(), **case.arguments
    )
    _same(grad_x, x.grad)
    _same(grad_w, weight.grad)
    if bias is not None:
        _same(grad_b, bias.grad)


@settings(max_examples=20)
@given(case=transposed_cases(), method=st.sampled_from(["loop", "im2col", "fft"]))
def test_conv_transpose2d_of_an_empty_batch_matches_torch(case, method):
    x, weight, bias, arguments = case
    x, weight, bias = _leaf(x[:0]), _leaf(weight), _leaf(bias)
    expected = F.conv_transpose2d(x, weight, bias, **arguments)
    got = R.conv_transpose2d(x.detach(), weight.detach(), bias.detach(), **arguments,
                             method=method)  # fmt: skip
    _same(got, expected.detach())
    expected.sum().backward()
    grads = R.conv_transpose2d_backward(
        torch.ones_like(expected), x.detach(), weight.detach(), **arguments
    )
    for got_grad, leaf in zip(grads, (x, weight, bias), strict=True):
        _same(got_grad, leaf.grad)


@settings(max_examples=20)
@given(case=pool_cases(), kind=st.sampled_from(["max", "avg"]))
def test_pooling_of_an_empty_batch_matches_torch(case, kind):
    x = torch.randn(0, *case.shape[1:], dtype=torch.float64, requires_grad=True)
    if kind == "max":
        arguments = dict(kernel_size=case.kernel_size, stride=case.stride, padding=case.padding,
                         dilation=case.dilation, ceil_mode=case.ceil_mode)  # fmt: skip
        ours, backward, theirs = R.max_pool2d, R.max_pool2d_backward, F.max_pool2d
    else:
        arguments = dict(kernel_size=case.kernel_size, stride=case.stride, padding=case.padding,
                         ceil_mode=case.ceil_mode)  # fmt: skip
        ours, backward, theirs = R.avg_pool2d, R.avg_pool2d_backward, F.avg_pool2d
    expected = theirs(x, **arguments)
    _same(ours(x.detach(), **arguments), expected.detach())
    expected.sum().backward()
    _same(backward(torch.ones_like(expected), x.detach(), **arguments), x.grad)


@given(channels=st.integers(1, 4), size=st.integers(1, 5), factor=st.integers(1, 3))
def test_elementwise_ops_of_an_empty_batch_match_torch(channels, size, factor):
    x = torch.randn(0, channels, size, size, dtype=torch.float64, requires_grad=True)
    expected = F.relu(x)
    _same(R.relu(x.detach()), expected.detach())
    expected.sum().backward()
    _same(R.relu_backward(torch.ones_like(expected), x.detach()), x.grad)
    shuffled = torch.randn(0, channels * factor * factor, size, size, dtype=torch.float64)
    expected = F.pixel_shuffle(shuffled, factor)
    _same(R.pixel_shuffle(shuffled, factor), expected)
    # torch 2.13 cannot be the oracle of the backward here: F.pixel_unshuffle returns an empty
    # batch unchanged and PixelShuffleBackward0 fails on it. A gradient has the input's shape.
    _same(R.pixel_shuffle_backward(torch.ones_like(expected), factor), torch.empty_like(shuffled))


@given(channels=st.integers(1, 4), size=st.integers(1, 5))
def test_batch_norm_of_an_empty_batch_matches_torch(channels, size):
    x = torch.randn(0, channels, size, size, dtype=torch.float64, requires_grad=True)
    gamma = torch.rand(channels, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(channels, dtype=torch.float64, requires_grad=True)
    mean, var = torch.randn(channels, dtype=torch.float64), torch.rand(channels).double() + 0.5
    expected = F.batch_norm(x, mean, var, gamma, beta, training=False)
    _same(R.batch_norm2d_eval(x.detach(), mean, var, gamma.detach(), beta.detach()),
          expected.detach())  # fmt: skip
    expected.sum().backward()
    grads = R.batch_norm2d_eval_backward(torch.ones_like(expected), x.detach(), mean, var,
                                         gamma.detach())  # fmt: skip
    for got_grad, leaf in zip(grads, (x, gamma, beta), strict=True):
        _same(got_grad, leaf.grad)
    expected = F.batch_norm(x.detach(), None, None, gamma.detach(), beta.detach(), training=True)
    _same(R.batch_norm2d(x.detach(), gamma.detach(), beta.detach()), expected)


@given(classes=st.integers(1, 5))
def test_cross_entropy_of_an_empty_batch_is_nan_like_torch(classes):
    logits = torch.randn(0, classes, dtype=torch.float64, requires_grad=True)
    target = torch.zeros(0, dtype=torch.int64)
    expected = F.cross_entropy(logits, target)
    _same(R.softmax_cross_entropy(logits.detach(), target), expected.detach())
    expected.backward()
    _same(R.softmax_cross_entropy_backward(logits.detach(), target), logits.grad)
