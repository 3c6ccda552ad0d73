"""The seeds' baselines: softmax regression, an MLP (003's series) and SimpleCNN (001).

They set the floor that convolutions must beat on Fashion-MNIST (003's comparison table:
softmax regression 84.0%, MLP 92.1%, as claimed by the seed). The two fully connected models
flatten the image, so their first layer depends on the input size (``input_size``); SimpleCNN
ends in global average pooling and takes any input of at least 4x4.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cnnkit.models._checks import check_positive, checked_forward, input_hw
from cnnkit.models._registry import ModelInfo, register_model


class SoftmaxRegression(nn.Module):
    """Flatten, then one ``Linear(C H W, num_classes)``; softmax lives in the loss.

    Parameters: ``(C H W + 1) num_classes`` (7,850 for 1x28x28 and 10 classes).
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, input_size: int | tuple[int, int] = 28
    ) -> None:
        super().__init__()
        check_positive("softmax_regression", num_classes=num_classes, in_channels=in_channels)
        height, width = input_hw("softmax_regression", input_size)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(in_channels * height * width, num_classes)

    @checked_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(x))


class MLP(nn.Module):
    """Flatten -> [Linear -> ReLU -> Dropout] per hidden size -> ``classifier`` Linear.

    The default ``hidden_sizes=(256, 128)`` is the 784-256-128-10 network of 003's series (its
    third article, "MLP ... 92%"), close to the 256-128-100 MLP of Fashion-MNIST's own benchmark
    table. Parameters: ``sum((n_i + 1) n_{i+1})`` over consecutive widths (235,146 by default).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int | tuple[int, int] = 28,
        hidden_sizes: Sequence[int] = (256, 128),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        check_positive("mlp", num_classes=num_classes, in_channels=in_channels)
        check_positive("mlp", **{f"hidden_sizes[{i}]": n for i, n in enumerate(hidden_sizes)})
        height, width = input_hw("mlp", input_size)
        layers: list[nn.Module] = [nn.Flatten()]
        width_in = in_channels * height * width
        for width_out in hidden_sizes:
            layers += [nn.Linear(width_in, width_out), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width_in = width_out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width_in, num_classes)

    @checked_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SimpleCNN(nn.Module):
    """001's SimpleCNN: three [conv3x3 -> BN -> ReLU] stages (32, 64, 128 channels), max-pools
    after the first two, global average pooling, ``Linear(128, num_classes)``.

    Parameters: convs ``9 C_in 32 + 32 + 9*32*64 + 64 + 9*64*128 + 128``, BN ``2 (32+64+128)``,
    head ``129 num_classes``: 94,986 for 3 channels and 10 classes.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        check_positive("simple_cnn", num_classes=num_classes, in_channels=in_channels)
        layers: list[nn.Module] = []
        channels = in_channels
        for index, width in enumerate((32, 64, 128)):
            layers += [
                nn.Conv2d(channels, width, 3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            layers.append(nn.MaxPool2d(2) if index < 2 else nn.AdaptiveAvgPool2d(1))
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(128, num_classes)

    @checked_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


@register_model(
    info=ModelInfo(
        family="baseline", default_input=(1, 28, 28), min_input=(28, 28), classifier="fc"
    )
)
def softmax_regression(**kwargs: Any) -> SoftmaxRegression:
    """Softmax regression (003's series, article 2). Keyword arguments:
    :class:`SoftmaxRegression`."""
    return SoftmaxRegression(**kwargs)


@register_model(
    info=ModelInfo(
        family="baseline",
        default_input=(1, 28, 28),
        min_input=(28, 28),
        classifier="classifier",
    )
)
def mlp(**kwargs: Any) -> MLP:
    """784-256-128-10 MLP (003's series, article 3). Keyword arguments: :class:`MLP`."""
    return MLP(**kwargs)


@register_model(
    info=ModelInfo(
        family="baseline",
        default_input=(3, 32, 32),
        min_input=(4, 4),
        first_conv="features.0",
        classifier="classifier",
        cam_layer="features.10",
    )
)
def simple_cnn(**kwargs: Any) -> SimpleCNN:
    """001's SimpleCNN for 32x32 colour images. Keyword arguments: :class:`SimpleCNN`."""
    return SimpleCNN(**kwargs)
