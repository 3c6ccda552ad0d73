"""DenseNet-BC (Huang et al., 2017) as torchvision builds it: densenet121 and densenet169.

Inside a dense block, layer ``l`` sees the concatenation of every earlier output,
``x_l = H_l([x_0, x_1, ..., x_{l-1}])`` (001), and adds ``growth_rate`` channels; ``H_l`` is
BN-ReLU-conv1x1 (``bn_size * growth_rate`` channels, the "B") then BN-ReLU-conv3x3. Between
blocks a transition (BN-ReLU-conv1x1 halving the channels, the "C", then 2x2 average pooling)
shrinks the map. Module names follow torchvision (``features.denseblock1.denselayer1.norm1``, ...)
so checkpoints load with ``strict=True``; ``cnnkit.models.weights`` also renames the legacy keys
(``norm.1`` -> ``norm1``) of torchvision's published files, as torchvision does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.models._checks import check_positive, checked_forward
from cnnkit.models._registry import ModelInfo, Published, register_model
from cnnkit.nn.init import init_kaiming_fan_in_


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (``bn_size * growth_rate``) -> BN-ReLU-conv3x3 (``growth_rate``)."""

    def __init__(
        self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        # concatenating here (not in the block) keeps each earlier map stored once
        x = self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))
        x = self.conv2(self.relu2(self.norm2(x)))
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; output channels ``in_channels + num_layers * growth_rate``."""

    def __init__(
        self,
        num_layers: int,
        in_channels: int,
        growth_rate: int,
        bn_size: int = 4,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        for index in range(num_layers):
            layer = DenseLayer(in_channels + index * growth_rate, growth_rate, bn_size, drop_rate)
            self.add_module(f"denselayer{index + 1}", layer)
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN -> ReLU -> conv1x1 (``out_channels``) -> 2x2 average pool (halves H and W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    """Stem (conv7x7/2, BN, ReLU, maxpool3x3/2) -> dense blocks with transitions -> ``norm5``
    -> ReLU -> global average pool -> ``classifier``.

    Initialisation as torchvision: convs Kaiming normal (fan_in, ReLU), norms 1/0, classifier
    bias 0.
    """

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        num_classes: int = 1000,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_positive("densenet", num_classes=num_classes, in_channels=in_channels)
        check_positive("densenet", growth_rate=growth_rate, bn_size=bn_size)
        stem = [
            ("conv0", nn.Conv2d(in_channels, num_init_features, 7, 2, 3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ]
        self.features = nn.Sequential(OrderedDict(stem))
        channels = num_init_features
        for index, num_layers in enumerate(block_config, start=1):
            block = DenseBlock(num_layers, channels, growth_rate, bn_size, drop_rate)
            self.features.add_module(f"denseblock{index}", block)
            channels = block.out_channels
            if index != len(block_config):
                self.features.add_module(f"transition{index}", Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, num_classes)
        init_kaiming_fan_in_(self)

    @checked_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.features(x), inplace=True)
        x = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)
        return self.classifier(x)


def _info(weights: str, top1: float) -> ModelInfo:
    return ModelInfo(
        family="densenet",
        min_input=(29, 29),
        first_conv="features.conv0",
        classifier="classifier",
        cam_layer="features.norm5",
        torchvision=True,
        published=Published(
            top1, "ImageNet-1k", f"torchvision 0.29 docs, {weights}.IMAGENET1K_V1 acc@1"
        ),
    )


@register_model(info=_info("DenseNet121_Weights", 74.434))
def densenet121(**kwargs: Any) -> DenseNet:
    """DenseNet-121: growth 32, blocks (6, 12, 24, 16). Keyword arguments: :class:`DenseNet`."""
    return DenseNet(32, (6, 12, 24, 16), 64, **kwargs)


@register_model(info=_info("DenseNet169_Weights", 75.600))
def densenet169(**kwargs: Any) -> DenseNet:
    """DenseNet-169: growth 32, blocks (6, 12, 32, 32). Keyword arguments: :class:`DenseNet`."""
    return DenseNet(32, (6, 12, 32, 32), 64, **kwargs)
