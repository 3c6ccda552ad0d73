"""VGG-11/13/16/19 with and without BatchNorm (Simonyan & Zisserman, 2014), torchvision's layout.

The idea (001): stacks of 3x3 convs instead of large kernels. Two 3x3 convs see 5x5 with
``18 C^2`` weights instead of ``25 C^2``; three see 7x7 with ``27 C^2`` instead of ``49 C^2``.
A stage is a :class:`VGGBlock` (usable on its own); the model flattens the blocks into one
``features`` Sequential so that indices, hence checkpoint keys, equal torchvision's
(``features.0.weight`` ... ``classifier.6.bias``). Initialisation as torchvision: convs Kaiming
normal (fan_out, ReLU), BN 1/0, Linear ``N(0, 0.01^2)``, all biases 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cnnkit.models._checks import check_positive, checked_forward
from cnnkit.models._registry import ModelInfo, Published, register_model
from cnnkit.nn.init import init_kaiming_fan_out_

# (number of 3x3 convs, channels) per stage; each stage ends in a 2x2 max-pool
STAGES: dict[str, tuple[tuple[int, int], ...]] = {
    "vgg11": ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)),
    "vgg13": ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512)),
    "vgg16": ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    "vgg19": ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
}


class VGGBlock(nn.Sequential):
    """``num_convs`` x [conv3x3 (pad 1) -> (BN) -> ReLU], then a 2x2 max-pool (001's VGG block).

    Halves the spatial size; parameters ``9 C_in C + C + (n - 1)(9 C^2 + C)`` (+ ``2 C`` per BN).
    """

    def __init__(
        self, in_channels: int, out_channels: int, num_convs: int, batch_norm: bool = False
    ) -> None:
        check_positive(
            "VGGBlock", in_channels=in_channels, out_channels=out_channels, num_convs=num_convs
        )
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(num_convs):
            layers.append(nn.Conv2d(channels, out_channels, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
            channels = out_channels
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        super().__init__(*layers)


class VGG(nn.Module):
    """``features`` (the stages, flattened) -> adaptive 7x7 average pool -> 3-layer classifier."""

    def __init__(
        self,
        stages: Sequence[tuple[int, int]],
        num_classes: int = 1000,
        in_channels: int = 3,
        batch_norm: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_positive("vgg", num_classes=num_classes, in_channels=in_channels)
        layers: list[nn.Module] = []
        channels = in_channels
        for num_convs, width in stages:
            layers.extend(VGGBlock(channels, width, num_convs, batch_norm))
            channels = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(channels * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        init_kaiming_fan_out_(self, linear_std=0.01)

    @checked_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def _info(name: str, top1: float, weights: str) -> ModelInfo:
    batch_norm = name.endswith("_bn")
    convs = sum(n for n, _ in STAGES[name.removesuffix("_bn")])
    # the last ReLU sits just before the last max-pool
    last_relu = convs * (3 if batch_norm else 2) + len(STAGES["vgg11"]) - 2
    return ModelInfo(
        family="vgg",
        min_input=(32, 32),
        first_conv="features.0",
        classifier="classifier.6",
        cam_layer=f"features.{last_relu}",
        torchvision=True,
        published=Published(
            top1, "ImageNet-1k", f"torchvision 0.29 docs, {weights}.IMAGENET1K_V1 acc@1"
        ),
    )


@register_model(info=_info("vgg11", 69.020, "VGG11_Weights"))
def vgg11(**kwargs: Any) -> VGG:
    """VGG-11 (configuration A). Keyword arguments: :class:`VGG`."""
    return VGG(STAGES["vgg11"], **kwargs)


@register_model(info=_info("vgg11_bn", 70.370, "VGG11_BN_Weights"))
def vgg11_bn(**kwargs: Any) -> VGG:
    """VGG-11 with BatchNorm. Keyword arguments: :class:`VGG`."""
    return VGG(STAGES["vgg11"], batch_norm=True, **kwargs)


@register_model(info=_info("vgg13", 69.928, "VGG13_Weights"))
def vgg13(**kwargs: Any) -> VGG:
    """VGG-13 (configuration B). Keyword arguments: :class:`VGG`."""
    return VGG(STAGES["vgg13"], **kwargs)


@register_model(info=_info("vgg13_bn", 71.586, "VGG13_BN_Weights"))
def vgg13_bn(**kwargs: Any) -> VGG:
    """VGG-13 with BatchNorm. Keyword arguments: :class:`VGG`."""
    return VGG(STAGES["vgg13"], batch_norm=True, **kwargs)


@register_model(info=_info("vgg16", 71.592, "VGG16_Weights"))
def vgg16(**kwargs: Any) -> VGG:
    """VGG-16 (configuration D). Keyword arguments: :class:`VGG`."""
    return VGG(STAGES["vgg16"], **kwargs)


@register_model(info=_info("vgg16_bn", 73.360, "VGG16_BN_Weights"))
def vgg16_bn(**kwargs: Any) -> VGG:
    """VGG-16 with BatchNorm. Keyword arguments: :class:`VGG`."""
    return VGG(STAGES["vgg16"], batch_norm=True, **kwargs)


@register_model(info=_info("vgg19", 72.376, "VGG19_Weights"))
def vgg19(**kwargs: Any) -> VGG:
    """VGG-19 (configuration E). Keyword arguments: :class:`VGG`."""
    return VGG(STAGES["vgg19"], **kwargs)


@register_model(info=_info("vgg19_bn", 74.218, "VGG19_BN_Weights"))
def vgg19_bn(**kwargs: Any) -> VGG:
    """VGG-19 with BatchNorm. Keyword arguments: :class:`VGG`."""
    return VGG(STAGES["vgg19"], batch_norm=True, **kwargs)
