"""ConvNormActivation: 'same'-style padding, torchvision's layout, and its output.

Oracles: the input size itself (a stride-1 conv with odd kernels must keep it), PyTorch's own
``padding="same"`` convolution, torch.nn.functional ops with the block's weights, and
torchvision's ``Conv2dNormActivation`` (state_dict keys).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from cnnkit.errors import ConfigError
from cnnkit.nn import ConvNormActivation, same_padding_for
from tests.oracles import torchvision_models

odd_kernels = st.sampled_from([1, 3, 5, 7])


@settings(max_examples=40)
@given(
    kernel=st.tuples(odd_kernels, odd_kernels),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    height=st.integers(1, 12),
    width=st.integers(1, 12),
)
def test_default_padding_keeps_the_size_for_odd_kernels_and_any_dilation(
    kernel, dilation, height, width
):
    block = ConvNormActivation(2, 3, kernel_size=kernel, dilation=dilation).eval()
    out = block(torch.randn(1, 2, height, width))
    assert out.shape == (1, 3, height, width)


@settings(max_examples=25)
@given(kernel=odd_kernels, dilation=st.integers(1, 3), size=st.integers(3, 10))
def test_default_padding_equals_pytorch_same_padding(kernel, dilation, size):
    block = ConvNormActivation(
        2, 4, kernel, dilation=dilation, norm_layer=None, activation_layer=None
    )
    same = nn.Conv2d(2, 4, kernel, padding="same", dilation=dilation)
    same.load_state_dict(block[0].state_dict())
    x = torch.randn(2, 2, size, size)
    torch.testing.assert_close(block(x), same(x))


def test_same_padding_for_gives_the_torchvision_formula_per_axis():
    assert same_padding_for(3) == (1, 1)
    assert same_padding_for((5, 3), (2, 1)) == (4, 1)
    assert same_padding_for(4) == (1, 1)  # even kernel: (k - 1) // 2, size shrinks by d


def test_output_is_conv_then_batchnorm_then_activation():
    block = ConvNormActivation(3, 5, 3, stride=2, groups=1, activation_layer=nn.Hardswish).eval()
    with torch.no_grad():
        block[1].running_mean.uniform_(-1, 1)
        block[1].running_var.uniform_(0.5, 2)
        block[1].weight.uniform_(0.5, 2)
        block[1].bias.uniform_(-1, 1)
    x = torch.randn(2, 3, 9, 9)
    conv, norm = block[0], block[1]
    expected = F.hardswish(
        F.batch_norm(
            F.conv2d(x, conv.weight, None, 2, 1),
            norm.running_mean,
            norm.running_var,
            norm.weight,
            norm.bias,
            eps=norm.eps,
        )
    )
    torch.testing.assert_close(block(x), expected)


def test_conv_bias_only_without_a_norm_layer():
    assert ConvNormActivation(2, 2)[0].bias is None
    assert ConvNormActivation(2, 2, norm_layer=None)[0].bias is not None
    assert len(ConvNormActivation(2, 2, norm_layer=None, activation_layer=None)) == 1


@pytest.mark.parametrize(
    "options",
    [
        {"kernel_size": 3, "stride": 2},
        {"kernel_size": 5, "groups": 4, "activation_layer": None},
        {"kernel_size": 3, "dilation": 2, "norm_layer": None},
    ],
)
def test_state_dict_keys_equal_torchvision_conv2d_norm_activation(options):
    torchvision_models()  # skips when the oracle is not installed
    from torchvision.ops.misc import Conv2dNormActivation

    theirs = Conv2dNormActivation(4, 8, **options)
    mine = ConvNormActivation(4, 8, **options)
    assert {k: v.shape for k, v in mine.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }
    assert mine[0].padding == theirs[0].padding


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"groups": 3}, "groups=3"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"dilation": (1, 2, 3)}, "dilation"),
    ],
)
def test_bad_arguments_are_one_line_config_errors(kwargs, named):
    with pytest.raises(ConfigError, match=named) as caught:
        ConvNormActivation(4, 8, **kwargs)
    assert "\n" not in str(caught.value)


def test_zero_channels_is_a_config_error():
    with pytest.raises(ConfigError, match="in_channels"):
        ConvNormActivation(0, 8)
