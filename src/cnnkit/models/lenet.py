"""LeNet-5 as seed 003 builds it (LeCun et al., 1998, with ReLU and max-pooling).

``features``: conv5x5(1->6, pad 2) -> ReLU -> maxpool2 -> conv5x5(6->16) -> ReLU -> maxpool2;
``classifier``: flatten -> 400 -> 120 -> 84 -> ``num_classes``. At 1x28x28 and 10 classes it has
61,706 parameters (003's figure, checked). Receptive fields after conv1/pool1/conv2/pool2:
5, 6, 14, 16 (003). The first Linear's width follows ``input_size``: 16 x 5 x 5 at 28x28.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnkit.models._checks import check_positive, checked_forward, flat_features, input_hw
from cnnkit.models._registry import ModelInfo, register_model


class LeNet5(nn.Module):
    """003's modern LeNet-5 (module indices as in 003's ``trace_shapes`` listing)."""

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, input_size: int | tuple[int, int] = 28
    ) -> None:
        super().__init__()
        check_positive("lenet5", num_classes=num_classes, in_channels=in_channels)
        height, width = input_hw("lenet5", input_size)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2, stride=2),
        )
        flat = flat_features(self.features, (in_channels, height, width), owner="lenet5")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    @checked_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model(
    info=ModelInfo(
        family="lenet",
        default_input=(1, 28, 28),
        min_input=(28, 28),
        first_conv="features.0",
        classifier="classifier.5",
        cam_layer="features.4",
    )
)
def lenet5(**kwargs: Any) -> LeNet5:
    """LeNet-5 of seed 003 (61,706 parameters at 1x28x28). Keyword arguments: :class:`LeNet5`."""
    return LeNet5(**kwargs)
