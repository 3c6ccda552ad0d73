"""MobileNetV3 Small and Large: searched inverted residuals with SE and hard-swish (C2).

Howard et al., "Searching for MobileNetV3" (arXiv:1905.02244), Tables 1 and 2. Module names follow
torchvision's ``mobilenet_v3_small``/``_large`` (``features``, ``block`` inside each bottleneck,
``classifier``), so its checkpoints load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from cnnkit.errors import ConfigError
from cnnkit.models._checks import check_positive, checked_forward
from cnnkit.models._registry import ModelInfo, Published, register_model
from cnnkit.models.mobilenetv2 import make_divisible
from cnnkit.nn.conv_norm_act import ConvNormActivation
from cnnkit.nn.init import init_kaiming_fan_out_
from cnnkit.nn.squeeze_excite import SqueezeExcitation


@dataclass(frozen=True)
class BottleneckConfig:
    """One row of Table 1/2: input, kernel, expanded and output channels, SE, activation
    (``"RE"`` ReLU or ``"HS"`` hard-swish), stride and dilation (widths before the multiplier)."""

    in_channels: int
    kernel: int
    expanded_channels: int
    out_channels: int
    use_se: bool
    activation: str
    stride: int
    dilation: int = 1

    def scaled(self, width_mult: float) -> BottleneckConfig:
        """The same row with every width multiplied and rounded by :func:`make_divisible`."""
        return replace(
            self,
            in_channels=make_divisible(self.in_channels * width_mult),
            expanded_channels=make_divisible(self.expanded_channels * width_mult),
            out_channels=make_divisible(self.out_channels * width_mult),
        )


_B = BottleneckConfig
# Table 1 (Large) and Table 2 (Small) of the paper; last_channel is the classifier's hidden width.
LARGE: tuple[BottleneckConfig, ...] = (
    _B(16, 3, 16, 16, False, "RE", 1),
    _B(16, 3, 64, 24, False, "RE", 2),
    _B(24, 3, 72, 24, False, "RE", 1),
    _B(24, 5, 72, 40, True, "RE", 2),
    _B(40, 5, 120, 40, True, "RE", 1),
    _B(40, 5, 120, 40, True, "RE", 1),
    _B(40, 3, 240, 80, False, "HS", 2),
    _B(80, 3, 200, 80, False, "HS", 1),
    _B(80, 3, 184, 80, False, "HS", 1),
    _B(80, 3, 184, 80, False, "HS", 1),
    _B(80, 3, 480, 112, True, "HS", 1),
    _B(112, 3, 672, 112, True, "HS", 1),
    _B(112, 5, 672, 160, True, "HS", 2),
    _B(160, 5, 960, 160, True, "HS", 1),
    _B(160, 5, 960, 160, True, "HS", 1),
)
SMALL: tuple[BottleneckConfig, ...] = (
    _B(16, 3, 16, 16, True, "RE", 2),
    _B(16, 3, 72, 24, False, "RE", 2),
    _B(24, 3, 88, 24, False, "RE", 1),
    _B(24, 5, 96, 40, True, "HS", 2),
    _B(40, 5, 240, 40, True, "HS", 1),
    _B(40, 5, 240, 40, True, "HS", 1),
    _B(40, 5, 120, 48, True, "HS", 1),
    _B(48, 5, 144, 48, True, "HS", 1),
    _B(48, 5, 288, 96, True, "HS", 2),
    _B(96, 5, 576, 96, True, "HS", 1),
    _B(96, 5, 576, 96, True, "HS", 1),
)
LAST_CHANNEL = {"large": 1280, "small": 1024}
ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {"RE": nn.ReLU, "HS": nn.Hardswish}


class InvertedResidual(nn.Module):
    """Expand 1x1 -> depthwise kxk -> [SE with hard-sigmoid gate] -> project 1x1 (+ skip).

    The SE squeeze width is ``make_divisible(expanded // 4, 8)`` (paper section 5.3: a quarter
    of the expansion layer). The skip is used when ``stride == 1`` and channels are unchanged.
    """

    def __init__(self, config: BottleneckConfig, norm_layer: Callable[..., nn.Module]) -> None:
        super().__init__()
        if config.stride not in (1, 2):
            raise ConfigError(f"MobileNetV3 bottleneck: stride must be 1 or 2, got {config.stride}")
        if config.activation not in ACTIVATIONS:
            raise ConfigError(
                "MobileNetV3 bottleneck: activation must be 'RE' or 'HS', "
                f"got {config.activation!r}"
            )
        activation = ACTIVATIONS[config.activation]
        self.use_res_connect = config.stride == 1 and config.in_channels == config.out_channels
        expanded = config.expanded_channels
        layers: list[nn.Module] = []
        if expanded != config.in_channels:
            layers.append(
                ConvNormActivation(
                    config.in_channels,
                    expanded,
                    1,
                    norm_layer=norm_layer,
                    activation_layer=activation,
                )
            )
        layers.append(
            ConvNormActivation(
                expanded,
                expanded,
                config.kernel,
                # A dilated block keeps its resolution instead of striding (segmentation use).
                stride=1 if config.dilation > 1 else config.stride,
                dilation=config.dilation,
                groups=expanded,
                norm_layer=norm_layer,
                activation_layer=activation,
            )
        )
        if config.use_se:
            layers.append(
                SqueezeExcitation(
                    expanded, make_divisible(expanded // 4, 8), scale_activation=nn.Hardsigmoid
                )
            )
        layers.append(
            ConvNormActivation(
                expanded, config.out_channels, 1, norm_layer=norm_layer, activation_layer=None
            )
        )
        self.block = nn.Sequential(*layers)
        self.out_channels = config.out_channels

    def forward(self, x: Tensor) -> Tensor:
        result = self.block(x)
        if self.use_res_connect:
            result += x
        return result


class MobileNetV3(nn.Module):
    """MobileNetV3 from a list of :class:`BottleneckConfig` rows (already width-scaled).

    Stem 3x3/2 hard-swish conv to the first row's input width; the bottlenecks; a 1x1 conv to
    ``6 x`` the last width; global pool; ``Linear -> Hardswish -> Dropout -> Linear``.
    BatchNorm uses ``eps=0.001, momentum=0.01`` (the TF reference values, as torchvision).
    """

    def __init__(
        self,
        bottlenecks: Sequence[BottleneckConfig],
        last_channel: int,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.2,
        norm_layer: Callable[..., nn.Module] | None = None,
    ) -> None:
        super().__init__()
        check_positive("MobileNetV3", num_classes=num_classes, in_channels=in_channels)
        if not bottlenecks:
            raise ConfigError("MobileNetV3: bottlenecks must not be empty")
        if not 0.0 <= dropout <= 1.0:
            raise ConfigError(f"MobileNetV3: dropout must be in [0, 1], got {dropout!r}")
        if norm_layer is None:
            norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        stem_width = bottlenecks[0].in_channels
        layers: list[nn.Module] = [
            ConvNormActivation(
                in_channels, stem_width, 3, 2, norm_layer=norm_layer, activation_layer=nn.Hardswish
            )
        ]
        layers += [InvertedResidual(config, norm_layer) for config in bottlenecks]
        last_in = bottlenecks[-1].out_channels
        last_out = 6 * last_in
        layers.append(
            ConvNormActivation(
                last_in, last_out, 1, norm_layer=norm_layer, activation_layer=nn.Hardswish
            )
        )
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(last_out, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )
        # torchvision's MobileNet init (C4): convs Kaiming-normal fan_out, norms 1/0,
        # linear N(0, 0.01)
        init_kaiming_fan_out_(self, linear_std=0.01)

    @checked_forward
    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def _mobilenet_v3(
    arch: str,
    width_mult: float = 1.0,
    reduced_tail: bool = False,
    dilated: bool = False,
    **kwargs: Any,
) -> MobileNetV3:
    """Scale the table of ``arch``; ``reduced_tail`` halves the last stage and ``dilated``
    dilates it (torchvision's options for segmentation backbones)."""
    if not width_mult > 0:
        raise ConfigError(f"MobileNetV3: width_mult must be > 0, got {width_mult!r}")
    table = LARGE if arch == "large" else SMALL
    divider = 2 if reduced_tail else 1
    tail_start = len(table) - 3  # the last stage (C4 in the paper) is the final three rows
    rows = []
    for index, row in enumerate(table):
        if index >= tail_start:
            # the stage's first block keeps its input and expansion widths; only its output shrinks
            first = index == tail_start
            row = replace(
                row,
                in_channels=row.in_channels if first else row.in_channels // divider,
                expanded_channels=row.expanded_channels
                if first
                else row.expanded_channels // divider,
                out_channels=row.out_channels // divider,
                dilation=2 if dilated else 1,
            )
        rows.append(row.scaled(width_mult))
    last_channel = make_divisible(LAST_CHANNEL[arch] // divider * width_mult)
    return MobileNetV3(rows, last_channel, **kwargs)


_SOURCE = "torchvision 0.29 docs, {} acc@1"


@register_model(
    info=ModelInfo(
        family="mobilenet",
        min_input=(1, 1),
        first_conv="features.0.0",
        classifier="classifier.3",
        cam_layer="features.16",
        torchvision=True,
        published=Published(
            74.042,
            "ImageNet-1k",
            _SOURCE.format("MobileNet_V3_Large_Weights.IMAGENET1K_V1") + " (paper Table 3: 75.2)",
        ),
    )
)
def mobilenet_v3_large(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> MobileNetV3:
    """MobileNetV3-Large 1.0 (Howard et al., 2019, Table 1). Keyword arguments: ``width_mult``,
    ``reduced_tail``, ``dilated``, ``dropout``, ``norm_layer``."""
    return _mobilenet_v3("large", num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(
    info=ModelInfo(
        family="mobilenet",
        min_input=(1, 1),
        first_conv="features.0.0",
        classifier="classifier.3",
        cam_layer="features.12",
        torchvision=True,
        published=Published(
            67.668,
            "ImageNet-1k",
            _SOURCE.format("MobileNet_V3_Small_Weights.IMAGENET1K_V1") + " (paper Table 3: 67.4)",
        ),
    )
)
def mobilenet_v3_small(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> MobileNetV3:
    """MobileNetV3-Small 1.0 (Howard et al., 2019, Table 2). Keyword arguments as
    :func:`mobilenet_v3_large`."""
    return _mobilenet_v3("small", num_classes=num_classes, in_channels=in_channels, **kwargs)
