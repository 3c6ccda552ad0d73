"""AlexNet (Krizhevsky et al., 2012) as torchvision builds it, and seed 003's AlexNet-small.

``alexnet`` keeps torchvision's module names (``features``, ``avgpool``, ``classifier``) and its
one-GPU channel widths (64, 192, 384, 256, 256; the paper's two-GPU net differs), so a torchvision
checkpoint loads with ``strict=True``: 61,100,840 parameters at 1000 classes. torchvision leaves
PyTorch's default initialisation in place, and so does this file.
``alexnet_small`` is 003's version for 28x28 Fashion-MNIST: 5x5 then 3x3 convs, two pools,
adaptive average pooling to 4x4, dropout 0.5/0.3 and a 256-wide hidden layer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnkit.models._checks import check_positive, checked_forward
from cnnkit.models._registry import ModelInfo, Published, register_model


class AlexNet(nn.Module):
    """torchvision's AlexNet: five convs, three max-pools, adaptive 6x6 pooling, three Linears."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        check_positive("alexnet", num_classes=num_classes, in_channels=in_channels)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    @checked_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class AlexNetSmall(nn.Module):
    """Seed 003's AlexNet-small for 28x28 inputs (module indices as in the seed)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        check_positive("alexnet_small", num_classes=num_classes, in_channels=in_channels)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(128, 64, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d((4, 4)),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(64 * 4 * 4, 256),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(256, num_classes),
        )

    @checked_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model(
    info=ModelInfo(
        family="alexnet",
        min_input=(63, 63),
        first_conv="features.0",
        classifier="classifier.6",
        cam_layer="features.11",
        torchvision=True,
        published=Published(
            56.522, "ImageNet-1k", "torchvision 0.29 docs, AlexNet_Weights.IMAGENET1K_V1 acc@1"
        ),
    )
)
def alexnet(**kwargs: Any) -> AlexNet:
    """AlexNet in torchvision's layout (61,100,840 parameters). Keyword arguments:
    :class:`AlexNet`."""
    return AlexNet(**kwargs)


@register_model(
    info=ModelInfo(
        family="alexnet",
        default_input=(1, 28, 28),
        min_input=(4, 4),
        first_conv="features.0",
        classifier="classifier.6",
        cam_layer="features.9",
    )
)
def alexnet_small(**kwargs: Any) -> AlexNetSmall:
    """Seed 003's AlexNet-small for 28x28 images. Keyword arguments: :class:`AlexNetSmall`."""
    return AlexNetSmall(**kwargs)
