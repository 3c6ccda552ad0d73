"""The im2col weight gradient (cnnkit.nn.matmul_grad) against PyTorch's own conv gradients."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from cnnkit.nn import matmul_grad
from cnnkit.nn.matmul_grad import (
    MatmulGradConv2d,
    eligible,
    im2col_weight_grad,
    use_matmul_weight_grad,
)
from cnnkit.runtime import autocast
from cnnkit.train.config import TrainConfig

CPU = torch.device("cpu")


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    channels=st.integers(1, 6),
    outputs=st.integers(1, 6),
    height=st.integers(1, 7),
    width=st.integers(1, 7),
    kernel=st.sampled_from([1, 3, 5]),
    padding=st.integers(0, 2),
    channels_last=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_im2col_weight_grad_equals_autograd(
    n, channels, outputs, height, width, kernel, padding, channels_last, seed
):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, height, width, generator=generator, dtype=torch.float64)
    weight = torch.randn(outputs, channels, kernel, kernel, generator=generator, dtype=x.dtype)
    out_h, out_w = height + 2 * padding - kernel + 1, width + 2 * padding - kernel + 1
    if out_h < 1 or out_w < 1:
        return
    grad_out = torch.randn(n, outputs, out_h, out_w, generator=generator, dtype=x.dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        grad_out = grad_out.contiguous(memory_format=torch.channels_last)
    weight.requires_grad_(True)
    F.conv2d(x, weight, padding=padding).backward(grad_out)
    ours = im2col_weight_grad(x, grad_out, (kernel, kernel), (padding, padding))
    torch.testing.assert_close(ours, weight.grad, rtol=1e-10, atol=1e-10)


def _grads(conv: nn.Module, x: torch.Tensor, grad_out: torch.Tensor, dtype):
    conv.zero_grad()
    x = x.detach().clone().requires_grad_(True)
    with autocast(CPU, dtype):
        out = conv(x)
    out.backward(grad_out.to(out.dtype))
    bias_grad = None if conv.bias is None else conv.bias.grad
    return out.detach(), x.grad, conv.weight.grad, bias_grad, out.grad_fn


@pytest.mark.parametrize("size", [1, 3, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_the_swapped_conv_matches_nn_conv2d_under_bf16_autocast(size, bias):
    torch.manual_seed(0)
    plain = nn.Conv2d(16, 24, 3, padding=1, bias=bias).to(memory_format=torch.channels_last)
    swapped = copy.deepcopy(plain)
    assert use_matmul_weight_grad(swapped) == 1
    x = torch.randn(8, 16, size, size).contiguous(memory_format=torch.channels_last)
    grad_out = torch.randn(8, 24, size, size)
    expected = _grads(plain, x, grad_out, torch.bfloat16)
    got = _grads(swapped, x, grad_out, torch.bfloat16)
    assert type(got[4]).__name__ == "_MatmulGradConvBackward"
    torch.testing.assert_close(got[0], expected[0], rtol=0, atol=0)  # the same forward
    torch.testing.assert_close(got[1], expected[1], rtol=0, atol=0)  # dX from the same kernel
    # dW: both accumulate in float32 and round the sum to bf16 once
    torch.testing.assert_close(got[2], expected[2], rtol=1e-2, atol=1e-2 * expected[2].abs().max())
    assert got[2].dtype == torch.float32
    if bias:
        torch.testing.assert_close(got[3], expected[3], rtol=1e-2, atol=1e-2)


def _backward_name(conv: nn.Module, x: torch.Tensor, dtype) -> str | None:
    with autocast(CPU, dtype):
        out = conv(x)
    return None if out.grad_fn is None else type(out.grad_fn).__name__


def test_only_bf16_maps_up_to_the_limit_take_the_matmul_path():
    conv = nn.Conv2d(4, 4, 3, padding=1)
    use_matmul_weight_grad(conv)
    side = int(matmul_grad.MAX_POSITIONS**0.5)
    small, large = torch.randn(2, 4, side, side), torch.randn(2, 4, side + 1, side + 1)
    assert _backward_name(conv, small, torch.bfloat16) == "_MatmulGradConvBackward"
    assert _backward_name(conv, large, torch.bfloat16) != "_MatmulGradConvBackward"
    assert _backward_name(conv, small, None) != "_MatmulGradConvBackward"  # fp32: oneDNN's
    with torch.no_grad():
        assert _backward_name(conv, small, torch.bfloat16) is None
    conv.weight.requires_grad_(False)
    assert _backward_name(conv, small, torch.bfloat16) != "_MatmulGradConvBackward"


@pytest.mark.parametrize(
    ("conv", "expected"),
    [
        (nn.Conv2d(3, 4, 3, padding=1), True),
        (nn.Conv2d(3, 4, 1), True),
        (nn.Conv2d(3, 4, 5, padding=2), True),
        (nn.Conv2d(3, 4, 3), False),  # no padding: the map shrinks
        (nn.Conv2d(3, 4, 3, padding=1, stride=2), False),
        (nn.Conv2d(3, 4, 3, padding=2, dilation=2), False),
        (nn.Conv2d(4, 4, 3, padding=1, groups=2), False),
        (nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), False),
        (nn.Conv2d(3, 4, (1, 3), padding=(0, 1)), False),
        (nn.Conv2d(3, 4, 3, padding="same"), False),
    ],
)
def test_eligible_convs(conv, expected):
    assert eligible(conv) is expected


def test_the_swap_keeps_parameters_and_state_dict_keys():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, stride=2), nn.Conv2d(4, 4, 1)
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    parameters = [id(p) for p in model.parameters()]
    assert use_matmul_weight_grad(model) == 2
    assert [type(m) for m in model] == [MatmulGradConv2d, nn.Conv2d, MatmulGradConv2d]
    assert [id(p) for p in model.parameters()] == parameters
    assert model.state_dict().keys() == before.keys()
    assert use_matmul_weight_grad(model) == 0  # swapped convs are not swapped again


def test_the_trainer_swaps_on_cpu_unless_told_not_to():
    from cnnkit.train.setup import build_model
    from tests.train.tiny import quadrant_dataset

    class Data:
        image_shape = (1, 12, 12)
        classes = ("a", "b", "c", "d")
        mean, std = (0.5,), (0.25,)
        train = quadrant_dataset(16, 0)

    for flag, expected in ((True, MatmulGradConv2d), (False, nn.Conv2d)):
        config = TrainConfig.from_flat(
            model="resnet18", model_kwargs={"small_input": True}, matmul_weight_grad=flag
        )
        model, _ = build_model(config.model, Data(), CPU, config.runtime, initialise=True)
        assert type(model.layer4[0].conv2) is expected
