"""Finite differences (torch.autograd.gradcheck) drive every forward/backward pair."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from cnnkit.reference.autograd import (
    AvgPool2dFunction,
    BatchNorm2dFunction,
    Conv2dFunction,
    ConvTranspose2dFunction,
    MaxPool2dFunction,
    ReLUFunction,
    SoftmaxCrossEntropyFunction,
)


def _leaf(*shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_(True)


@pytest.mark.parametrize("method", ["loop", "im2col", "fft"])
def test_conv2d(method):
    x, weight, bias = _leaf(1, 4, 5, 4), _leaf(4, 2, 3, 2, seed=1), _leaf(4, seed=2)
    assert gradcheck(lambda *t: Conv2dFunction.apply(*t, (2, 1), (1, 0), (1, 2), 2, method),
                     (x, weight, bias))  # fmt: skip


def test_conv2d_winograd():
    x, weight = _leaf(1, 2, 5, 6), _leaf(3, 2, 3, 3, seed=1)
    assert gradcheck(lambda *t: Conv2dFunction.apply(*t, None, 1, 1, 1, 1, "winograd"),
                     (x, weight))  # fmt: skip


def test_conv_transpose2d():
    x, weight, bias = _leaf(1, 4, 3, 3), _leaf(4, 1, 3, 2, seed=1), _leaf(2, seed=2)
    assert gradcheck(lambda *t: ConvTranspose2dFunction.apply(*t, 2, 1, 1, (1, 2), 2),
                     (x, weight, bias))  # fmt: skip


def test_pools():
    x = _leaf(2, 3, 7, 6)  # continuous values: no ties, where a max has no derivative
    assert gradcheck(lambda t: MaxPool2dFunction.apply(t, 3, 2, 1, 1, True), (x,))
    assert gradcheck(lambda t: AvgPool2dFunction.apply(t, (3, 2), 2, 1, True, True), (x,))


def test_batch_norm_relu_and_loss():
    x, gamma, beta = _leaf(3, 2, 3, 3), _leaf(2, seed=1), _leaf(2, seed=2)
    assert gradcheck(lambda *t: BatchNorm2dFunction.apply(*t, 1e-5), (x, gamma, beta))
    assert gradcheck(ReLUFunction.apply, (_leaf(4, 5, seed=3),))
    target = torch.tensor([1, 0, 3])
    assert gradcheck(lambda z: SoftmaxCrossEntropyFunction.apply(z, target), (_leaf(3, 4),))


def test_reference_ops_compose_inside_a_torch_graph():
    """conv -> BN -> ReLU -> max-pool -> loss built from the reference pairs trains like torch's."""
    x, weight = _leaf(4, 2, 6, 6), _leaf(3, 2, 3, 3, seed=1)
    gamma, beta = _leaf(3, seed=2), _leaf(3, seed=3)
    target = torch.tensor([0, 2, 1, 2])

    def forward(conv, norm, relu, pool, loss):
        h = pool(relu(norm(conv(x, weight), gamma, beta)))
        return loss(h.flatten(1)[:, :3] * 1.0, target)

    ours = forward(
        lambda a, w: Conv2dFunction.apply(a, w, None, 1, 1, 1, 1, "im2col"),
        lambda a, g, b: BatchNorm2dFunction.apply(a, g, b, 1e-5),
        ReLUFunction.apply,
        lambda a: MaxPool2dFunction.apply(a, 2, 2, 0, 1, False),
        SoftmaxCrossEntropyFunction.apply,
    )
    leaves = (x, weight, gamma, beta)
    grads = torch.autograd.grad(ours, leaves)
    theirs = forward(
        lambda a, w: torch.nn.functional.conv2d(a, w, padding=1),
        lambda a, g, b: torch.nn.functional.batch_norm(a, None, None, g, b, training=True),
        torch.relu,
        lambda a: torch.nn.functional.max_pool2d(a, 2),
        torch.nn.functional.cross_entropy,
    )
    expected = torch.autograd.grad(theirs, leaves)
    torch.testing.assert_close(ours, theirs)
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)
