"""Conv2dSame and CausalConv1d against PyTorch's own padding and the definitions of 002."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.nn import CausalConv1d, Conv2dSame

sizes = st.integers(1, 12)
kernels = st.integers(1, 5)
dilations = st.integers(1, 3)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@settings(max_examples=40)
@given(h=sizes, w=sizes, kh=kernels, kw=kernels, dh=dilations, dw=dilations)
def test_stride_one_equals_pytorch_padding_same(h, w, kh, kw, dh, dw):
    """PyTorch's padding='same' (stride 1) puts the odd pixel after, like TensorFlow."""
    torch.manual_seed(0)
    ours = Conv2dSame(2, 3, (kh, kw), dilation=(dh, dw)).double()
    reference = nn.Conv2d(2, 3, (kh, kw), padding="same", dilation=(dh, dw)).double()
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(1, 2, h, w, dtype=torch.float64)
    torch.testing.assert_close(ours(x), reference(x))


@settings(max_examples=40)
@given(n=st.integers(1, 14), k=kernels, s=st.integers(1, 4), d=dilations)
def test_any_stride_gives_ceil_n_over_s_and_tensorflow_alignment(n, k, s, d):
    """Output length ceil(n / s); output i reads inputs i*s + j*d - floor(P / 2) (TensorFlow's
    'same', checked element by element against the definition with explicit zero padding)."""
    torch.manual_seed(0)
    conv = Conv2dSame(1, 1, (1, k), stride=(1, s), dilation=(1, d), bias=False).double()
    x = torch.randn(1, 1, 1, n, dtype=torch.float64)
    y = conv(x).detach()[0, 0, 0]
    out = math.ceil(n / s)
    assert y.numel() == out
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    weight = conv.weight.detach()[0, 0, 0]
    for i in range(out):
        expected = 0.0
        for j in range(k):
            position = i * s + j * d - total // 2
            if 0 <= position < n:
                expected += float(weight[j] * x[0, 0, 0, position])
        assert abs(float(y[i]) - expected) < 1e-12


def test_even_kernel_pads_asymmetrically():
    conv = Conv2dSame(1, 1, 2)
    assert conv.padding_for(5, 5) == (0, 1, 0, 1)
    assert conv(torch.randn(1, 1, 5, 5)).shape == (1, 1, 5, 5)


def test_padding_modes_and_state_dict_of_a_plain_conv():
    conv = Conv2dSame(2, 4, 3, padding_mode="reflect")
    assert set(conv.state_dict()) == {"weight", "bias"}
    assert conv(torch.randn(1, 2, 6, 7)).shape == (1, 4, 6, 7)
    with pytest.raises(ConfigError, match="padding_mode"):
        Conv2dSame(2, 4, 3, padding_mode="mirror")


@settings(max_examples=30)
@given(length=st.integers(1, 16), k=kernels, d=dilations)
def test_causal_conv_equals_symmetric_conv_truncated(length, k, d):
    """With padding d(k-1) on both sides, the first L outputs of a stride-1 Conv1d are the
    causal outputs (the rest would read the future)."""
    torch.manual_seed(0)
    causal = CausalConv1d(2, 3, k, dilation=d).double()
    reference = nn.Conv1d(2, 3, k, dilation=d, padding=d * (k - 1)).double()
    reference.load_state_dict(causal.state_dict())
    x = torch.randn(1, 2, length, dtype=torch.float64)
    torch.testing.assert_close(causal(x), reference(x)[..., :length])


@settings(max_examples=30)
@given(length=st.integers(2, 12), k=kernels, d=dilations, t=st.integers(0, 11))
def test_causal_output_does_not_depend_on_the_future(length, k, d, t):
    t = t % length
    causal = CausalConv1d(1, 1, k, dilation=d).double()
    x = torch.randn(1, 1, length, dtype=torch.float64, requires_grad=True)
    causal(x)[0, 0, t].backward()
    assert torch.all(x.grad[0, 0, t + 1 :] == 0)
    # and it depends on the present when the kernel's newest tap is non-zero
    assert x.grad[0, 0, t] == causal.weight[0, 0, -1]


def test_causal_rejects_tuple_kernels():
    with pytest.raises(ConfigError, match="kernel_size"):
        CausalConv1d(1, 1, (3,))  # type: ignore[arg-type]
