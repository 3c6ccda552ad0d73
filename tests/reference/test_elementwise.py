"""ReLU, softmax + cross-entropy and pixel shuffle against torch and autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import ConfigError, ShapeError
from cnnkit.reference import (
    pixel_shuffle,
    pixel_shuffle_backward,
    relu,
    relu_backward,
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
)


@settings(max_examples=30)
@given(seed=st.integers(0, 999), shape=st.lists(st.integers(1, 5), min_size=1, max_size=4))
def test_relu_and_its_gradient_match_torch_including_zeros(seed, shape):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(-2, 3, shape, generator=generator).double()  # exact zeros on purpose
    leaf = x.clone().requires_grad_(True)
    y = torch.relu(leaf)
    grad_out = torch.randn(y.shape, generator=generator, dtype=y.dtype)
    y.backward(grad_out)
    torch.testing.assert_close(relu(x), y, rtol=0, atol=0)
    torch.testing.assert_close(relu_backward(grad_out, x), leaf.grad, rtol=0, atol=0)


@settings(max_examples=50)
@given(batch=st.integers(1, 6), classes=st.integers(2, 8), seed=st.integers(0, 999),
       probabilities=st.booleans(), scale=st.sampled_from([1.0, 100.0]))  # fmt: skip
def test_cross_entropy_and_p_minus_y_match_torch(batch, classes, seed, probabilities, scale):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, classes, generator=generator, dtype=torch.float64) * scale
    if probabilities:
        target = torch.softmax(torch.randn(batch, classes, generator=generator), 1).double()
    else:
        target = torch.randint(0, classes, (batch,), generator=generator)
    leaf = logits.clone().requires_grad_(True)
    loss = F.cross_entropy(leaf, target)
    loss.backward()
    torch.testing.assert_close(softmax_cross_entropy(logits, target), loss)
    torch.testing.assert_close(softmax_cross_entropy_backward(logits, target), leaf.grad)


def test_cross_entropy_refuses_bad_targets():
    logits = torch.randn(3, 4)
    with pytest.raises(ShapeError, match=r"class index outside \[0, 4\)"):
        softmax_cross_entropy(logits, torch.tensor([0, 4, 1]))
    with pytest.raises(ShapeError, match=r"class-index target has shape \(2,\), expected \(3,\)"):
        softmax_cross_entropy(logits, torch.tensor([0, 1]))


@settings(max_examples=30)
@given(factor=st.integers(1, 3), channels=st.integers(1, 3), size=st.integers(1, 4))
def test_pixel_shuffle_and_backward_match_torch(factor, channels, size):
    x = torch.randn(2, channels * factor**2, size, size + 1, dtype=torch.float64)
    leaf = x.clone().requires_grad_(True)
    y = F.pixel_shuffle(leaf, factor)
    grad_out = torch.randn_like(y)
    y.backward(grad_out)
    torch.testing.assert_close(pixel_shuffle(x, factor), y, rtol=0, atol=0)
    torch.testing.assert_close(pixel_shuffle_backward(grad_out, factor), leaf.grad, rtol=0, atol=0)


def test_pixel_shuffle_errors():
    with pytest.raises(ShapeError, match=r"input channels \(3\) are not divisible by"):
        pixel_shuffle(torch.randn(1, 3, 2, 2), 2)
    with pytest.raises(ConfigError, match="upscale_factor must be a positive integer"):
        pixel_shuffle(torch.randn(1, 4, 2, 2), 0)
