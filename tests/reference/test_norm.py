"""Batch norm (training and evaluation statistics) against torch.nn.functional.batch_norm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import ShapeError
from cnnkit.reference import (
    batch_norm2d,
    batch_norm2d_backward,
    batch_norm2d_eval,
    batch_norm2d_eval_backward,
)

TOLERANCE = dict(rtol=1e-9, atol=1e-9)
shapes = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5))


def _tensors(shape, seed):
    generator = torch.Generator().manual_seed(seed)

    def draw(*size, positive=False):
        t = torch.randn(*size, generator=generator, dtype=torch.float64)
        return t.abs() + 0.1 if positive else t

    channels = shape[1]
    return (draw(*shape) * 3 + 1, draw(channels), draw(channels), draw(channels),
            draw(channels, positive=True))  # fmt: skip


@settings(max_examples=60)
@given(shape=shapes.filter(lambda s: s[0] * s[2] * s[3] > 1), seed=st.integers(0, 99),
       eps=st.sampled_from([1e-5, 1e-3]))  # fmt: skip
def test_training_mode_forward_and_backward_match_torch(shape, seed, eps):
    x, gamma, beta, _, _ = _tensors(shape, seed)
    leaves = [t.clone().requires_grad_(True) for t in (x, gamma, beta)]
    y = F.batch_norm(leaves[0], None, None, leaves[1], leaves[2], training=True, eps=eps)
    grad_out = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed + 1),
                           dtype=y.dtype)  # fmt: skip
    y.backward(grad_out)
    torch.testing.assert_close(batch_norm2d(x, gamma, beta, eps), y, **TOLERANCE)
    for got, leaf in zip(batch_norm2d_backward(grad_out, x, gamma, eps), leaves, strict=True):
        torch.testing.assert_close(got, leaf.grad, **TOLERANCE)


@settings(max_examples=40)
@given(shape=shapes, seed=st.integers(0, 99))
def test_eval_mode_forward_and_backward_match_torch(shape, seed):
    x, gamma, beta, mean, variance = _tensors(shape, seed)
    leaves = [t.clone().requires_grad_(True) for t in (x, gamma, beta)]
    y = F.batch_norm(leaves[0], mean, variance, leaves[1], leaves[2], training=False)
    grad_out = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed + 1),
                           dtype=y.dtype)  # fmt: skip
    y.backward(grad_out)
    torch.testing.assert_close(batch_norm2d_eval(x, mean, variance, gamma, beta), y, **TOLERANCE)
    grads = batch_norm2d_eval_backward(grad_out, x, mean, variance, gamma)
    for got, leaf in zip(grads, leaves, strict=True):
        torch.testing.assert_close(got, leaf.grad, **TOLERANCE)


def test_per_channel_parameters_must_match_the_channels():
    with pytest.raises(ShapeError, match=r"batch_norm2d: gamma has shape \(2,\), expected \(3,\)"):
        batch_norm2d(torch.randn(2, 3, 4, 4), torch.ones(2), torch.zeros(3))
