"""Per-family initialisation (C4): measured weight spreads against torchvision's schemes.

The oracle is the formula of each scheme (torchvision's source, 002's fans) applied to the
layer's shape; a large layer makes the measured standard deviation precise to ~0.1%.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnkit.models import create_model


def _std(tensor: torch.Tensor) -> float:
    return float(tensor.detach().double().std())


@pytest.mark.parametrize(
    ("name", "layer", "mode"),
    [
        ("resnet18", "layer4.1.conv2", "fan_out"),
        ("vgg11", "features.16", "fan_out"),
        ("densenet121", "features.denseblock4.denselayer16.conv1", "fan_in"),
    ],
)
def test_kaiming_normal_layers(name, layer, mode):
    torch.manual_seed(0)
    weight = create_model(name).get_submodule(layer).weight
    out_channels, in_per_group, kh, kw = weight.shape
    fan = in_per_group * kh * kw if mode == "fan_in" else out_channels * kh * kw
    assert _std(weight) == pytest.approx(math.sqrt(2.0 / fan), rel=0.01)


def test_grouped_conv_uses_pytorchs_fan_out_like_torchvision():
    """torchvision counts fan_out over all output channels, C_out k^2, not 002's C_out/g k^2."""
    torch.manual_seed(0)
    conv = create_model("resnext50_32x4d").layer4[0].conv2
    assert conv.groups == 32
    fan_out_torch = conv.out_channels * 9
    assert _std(conv.weight) == pytest.approx(math.sqrt(2.0 / fan_out_torch), rel=0.01)


def test_vgg_linears_and_biases():
    torch.manual_seed(0)
    model = create_model("vgg11")
    assert _std(model.classifier[0].weight) == pytest.approx(0.01, rel=0.01)
    assert not model.classifier[0].bias.any() and not model.features[0].bias.any()


def test_googlenet_truncated_normal():
    torch.manual_seed(0)
    model = create_model("googlenet")
    weight = model.inception5b.branch2[1].conv.weight.detach()
    assert _std(weight) == pytest.approx(0.01, rel=0.01)
    assert float(weight.abs().max()) <= 2.0
    assert torch.all(model.inception5b.branch1.bn.weight == 1)


def test_squeezenet_kaiming_uniform_and_final_conv():
    torch.manual_seed(0)
    model = create_model("squeezenet1_0")
    weight = model.features[12].expand3x3.weight.detach()  # 256 x 64 x 3 x 3
    bound = math.sqrt(6.0 / (64 * 9))  # kaiming_uniform, fan_in, gain sqrt(2)
    assert _std(weight) == pytest.approx(bound / math.sqrt(3), rel=0.01)
    assert float(weight.abs().max()) <= bound
    assert _std(model.classifier[1].weight) == pytest.approx(0.01, rel=0.05)


def test_alexnet_keeps_pytorchs_default_init():
    """torchvision's AlexNet does not re-initialise: Linear/Conv use U(-1/sqrt(fan_in), ...)."""
    torch.manual_seed(0)
    model = create_model("alexnet")
    layer = model.classifier[4]
    assert isinstance(layer, nn.Linear)
    bound = 1 / math.sqrt(layer.in_features)
    assert _std(layer.weight) == pytest.approx(bound / math.sqrt(3), rel=0.01)
