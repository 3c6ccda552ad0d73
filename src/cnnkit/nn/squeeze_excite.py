"""Squeeze-and-Excitation: rescale each channel by a gate computed from the whole image (C1).

Hu et al., "Squeeze-and-Excitation Networks" (arXiv:1709.01507), Fig. 1 and eq. 2-4; seed 001
lists SE among the modern tricks. Module names (``avgpool``, ``fc1``, ``fc2``, ``activation``,
``scale_activation``) follow torchvision's ``SqueezeExcitation`` so checkpoints of MobileNetV3,
EfficientNet and RegNet load unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from cnnkit.errors import ConfigError


class SqueezeExcitation(nn.Module):
    """``y = x * sigma(W2 delta(W1 mean_hw(x) + b1) + b2)``, one gate per (sample, channel).

    ``fc1``/``fc2`` are 1x1 convolutions (``input_channels -> squeeze_channels -> input_channels``,
    with bias), ``activation`` is delta (ReLU by default) and ``scale_activation`` is sigma
    (Sigmoid by default; MobileNetV3 uses Hardsigmoid). Parameters:
    ``2 * input_channels * squeeze_channels + squeeze_channels + input_channels``.
    """

    def __init__(
        self,
        input_channels: int,
        squeeze_channels: int,
        activation: Callable[..., nn.Module] = nn.ReLU,
        scale_activation: Callable[..., nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        for name, value in (
            ("input_channels", input_channels),
            ("squeeze_channels", squeeze_channels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"SqueezeExcitation: {name} must be an integer >= 1, got {value!r}"
                )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def gate(self, input: Tensor) -> Tensor:
        """The (N, C, 1, 1) channel gate ``sigma(fc2(delta(fc1(mean_hw(x)))))``."""
        squeezed = self.avgpool(input)
        return self.scale_activation(self.fc2(self.activation(self.fc1(squeezed))))

    def forward(self, input: Tensor) -> Tensor:
        return input * self.gate(input)
