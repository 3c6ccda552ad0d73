"""MobileNetV2: inverted residuals with linear bottlenecks (C2).

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks" (arXiv:1801.04381),
Table 2. Seed 001 surveys the depthwise-separable idea this builds on. Module names follow
torchvision's ``mobilenet_v2`` (``features``, ``classifier``, ``conv`` inside each block), so its
checkpoints load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from cnnkit.errors import ConfigError
from cnnkit.models._checks import check_positive, checked_forward
from cnnkit.models._registry import ModelInfo, Published, register_model
from cnnkit.nn.conv_norm_act import ConvNormActivation
from cnnkit.nn.init import init_kaiming_fan_out_

# (expansion t, output channels c, repeats n, first stride s), Table 2 of the paper.
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never more than 10% down.

    ``max(min_value, floor((v + divisor / 2) / divisor) * divisor)``, plus one ``divisor`` if that
    fell below ``0.9 * v``. This is the rule of the TF-slim MobileNet code
    (tensorflow/models research/slim/nets/mobilenet/mobilenet.py) that MobileNetV2/V3,
    EfficientNet and RegNet use for width multipliers; ``min_value`` defaults to ``divisor``.
    """
    if divisor < 1:
        raise ConfigError(f"make_divisible: divisor must be >= 1, got {divisor!r}")
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class InvertedResidual(nn.Module):
    """Expand 1x1 (ReLU6) -> depthwise 3x3 (ReLU6) -> project 1x1 (linear), plus a skip.

    The skip is used when ``stride == 1`` and the channel count is unchanged. With
    ``expand_ratio == 1`` the expansion conv is omitted (the first block of the network).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expand_ratio: int,
        norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ConfigError(f"MobileNetV2 InvertedResidual: stride must be 1 or 2, got {stride}")
        hidden = round(in_channels * expand_ratio)
        self.stride = stride
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(
                ConvNormActivation(
                    in_channels, hidden, 1, norm_layer=norm_layer, activation_layer=nn.ReLU6
                )
            )
        layers += [
            ConvNormActivation(
                hidden,
                hidden,
                3,
                stride,
                groups=hidden,
                norm_layer=norm_layer,
                activation_layer=nn.ReLU6,
            ),
            # Linear bottleneck: no activation after the projection (paper section 3.2).
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            norm_layer(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 with a width multiplier (channels rounded by :func:`make_divisible`).

    Args:
        num_classes: classifier outputs.
        in_channels: channels of the input image (the stem conv's input).
        width_mult: multiplies every width (the last conv's 1280 only when ``> 1``).
        inverted_residual_setting: ``(t, c, n, s)`` rows; defaults to the paper's Table 2.
        round_nearest: channel rounding divisor (1 turns rounding off).
        dropout: dropout before the classifier.
        norm_layer: normalisation after each conv (BatchNorm2d).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        width_mult: float = 1.0,
        inverted_residual_setting: Sequence[Sequence[int]] | None = None,
        round_nearest: int = 8,
        dropout: float = 0.2,
        norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        check_positive("MobileNetV2", num_classes=num_classes, in_channels=in_channels)
        setting = (
            INVERTED_RESIDUAL_SETTING
            if inverted_residual_setting is None
            else (inverted_residual_setting)
        )
        _check_arguments(width_mult, dropout, setting)
        width = make_divisible(32 * width_mult, round_nearest)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [
            ConvNormActivation(
                in_channels, width, 3, 2, norm_layer=norm_layer, activation_layer=nn.ReLU6
            )
        ]
        for expand_ratio, channels, repeats, first_stride in setting:
            out_channels = make_divisible(channels * width_mult, round_nearest)
            for index in range(repeats):
                stride = first_stride if index == 0 else 1
                features.append(
                    InvertedResidual(width, out_channels, stride, expand_ratio, norm_layer)
                )
                width = out_channels
        features.append(
            ConvNormActivation(
                width, self.last_channel, 1, norm_layer=norm_layer, activation_layer=nn.ReLU6
            )
        )
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes)
        )
        # torchvision's MobileNet init (C4): convs Kaiming-normal fan_out, norms 1/0,
        # linear N(0, 0.01)
        init_kaiming_fan_out_(self, linear_std=0.01)

    @checked_forward
    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.classifier(torch.flatten(x, 1))


def _check_arguments(width_mult: float, dropout: float, setting: Sequence[Sequence[int]]) -> None:
    if not width_mult > 0:
        raise ConfigError(f"MobileNetV2: width_mult must be > 0, got {width_mult!r}")
    if not 0.0 <= dropout <= 1.0:
        raise ConfigError(f"MobileNetV2: dropout must be in [0, 1], got {dropout!r}")
    if not setting or any(len(row) != 4 for row in setting):
        raise ConfigError(
            "MobileNetV2: inverted_residual_setting must be non-empty (t, c, n, s) rows"
        )


@register_model(
    info=ModelInfo(
        family="mobilenet",
        default_input=(3, 224, 224),
        min_input=(1, 1),
        first_conv="features.0.0",
        classifier="classifier.1",
        cam_layer="features.18",
        torchvision=True,
        published=Published(
            71.878,
            "ImageNet-1k",
            "torchvision 0.29 docs, MobileNet_V2_Weights.IMAGENET1K_V1 acc@1 (paper Table 4: 72.0)",
        ),
    )
)
def mobilenet_v2(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> MobileNetV2:
    """MobileNetV2 1.0 (Sandler et al., 2018, Table 2). Keyword arguments go to
    :class:`MobileNetV2` (``width_mult``, ``dropout``, ...)."""
    return MobileNetV2(num_classes=num_classes, in_channels=in_channels, **kwargs)
