"""SqueezeNet 1.0 (Iandola et al., 2016) as torchvision builds it.

A Fire module squeezes to few channels with 1x1 convs, then expands with parallel 1x1 and 3x3
convs whose outputs are concatenated; the classifier is a 1x1 conv to ``num_classes`` maps,
averaged globally (no Linear). 1,248,424 parameters at 1000 classes, AlexNet-level accuracy.
Initialisation as torchvision: ``final_conv`` ``N(0, 0.01^2)``, other convs Kaiming uniform
(fan_in, gain sqrt(2)), biases 0.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnkit.models._checks import check_positive, checked_forward
from cnnkit.models._registry import ModelInfo, Published, register_model
from cnnkit.nn.init import kaiming_uniform_

# (in, squeeze, expand 1x1, expand 3x3) per Fire module; "M" is a 3x3/2 ceil-mode max-pool
FIRE_CONFIG_1_0: tuple[tuple[int, int, int, int] | str, ...] = (
    (96, 16, 64, 64),
    (128, 16, 64, 64),
    (128, 32, 128, 128),
    "M",
    (256, 32, 128, 128),
    (256, 48, 192, 192),
    (384, 48, 192, 192),
    (384, 64, 256, 256),
    "M",
    (512, 64, 256, 256),
)


class Fire(nn.Module):
    """squeeze 1x1 -> ReLU -> [expand1x1 -> ReLU, expand3x3 -> ReLU] concatenated."""

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [
                self.expand1x1_activation(self.expand1x1(x)),
                self.expand3x3_activation(self.expand3x3(x)),
            ],
            1,
        )


class SqueezeNet(nn.Module):
    """SqueezeNet 1.0: conv7x7/2 (96) -> pool -> 8 Fire modules with two more pools ->
    classifier (dropout, ``final_conv`` 1x1, ReLU, global average pool)."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        check_positive("squeezenet", num_classes=num_classes, in_channels=in_channels)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, 96, kernel_size=7, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        ]
        for item in FIRE_CONFIG_1_0:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
            else:
                layers.append(Fire(*item))
        self.features = nn.Sequential(*layers)
        final_conv = nn.Conv2d(512, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1)
        )
        self._init_weights(final_conv)

    @torch.no_grad()
    def _init_weights(self, final_conv: nn.Conv2d) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                if module is final_conv:
                    module.weight.normal_(0.0, 0.01)
                else:
                    kaiming_uniform_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:  # every conv here has one
                    module.bias.zero_()

    @checked_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


@register_model(
    info=ModelInfo(
        family="squeezenet",
        min_input=(21, 21),
        first_conv="features.0",
        classifier="classifier.1",
        cam_layer="features.12",
        torchvision=True,
        published=Published(
            58.092,
            "ImageNet-1k",
            "torchvision 0.29 docs, SqueezeNet1_0_Weights.IMAGENET1K_V1 acc@1",
        ),
    )
)
def squeezenet1_0(**kwargs: Any) -> SqueezeNet:
    """SqueezeNet 1.0. Keyword arguments: :class:`SqueezeNet`."""
    return SqueezeNet(**kwargs)
