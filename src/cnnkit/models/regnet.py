"""RegNetY: stage widths from a quantised linear rule, ResNeXt-style blocks with SE (C2).

Radosavovic et al., "Designing Network Design Spaces" (arXiv:2003.13678), section 3.3 (the
quantised linear width rule) and 4 (RegNetY = RegNetX + SE). Module names follow torchvision's
``regnet_y_400mf`` (``stem``, ``trunk_output.block1..4``, ``block{s}-{i}``, ``proj``,
``f.a/b/se/c``, ``fc``) so its checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from cnnkit.errors import ConfigError
from cnnkit.models._checks import check_positive, checked_forward
from cnnkit.models._registry import ModelInfo, Published, register_model
from cnnkit.models.mobilenetv2 import make_divisible
from cnnkit.nn.conv_norm_act import ConvNormActivation
from cnnkit.nn.squeeze_excite import SqueezeExcitation

QUANTUM = 8  # block widths are multiples of 8 (paper section 3.3)


@dataclass(frozen=True)
class StageParams:
    """Per-stage widths, depths, group widths and bottleneck ratios (all stages stride 2)."""

    widths: tuple[int, ...]
    depths: tuple[int, ...]
    group_widths: tuple[int, ...]
    bottleneck_multipliers: tuple[float, ...]
    se_ratio: float | None = None


def regnet_stages(
    depth: int,
    initial_width: int,
    width_slope: float,
    width_multiplier: float,
    group_width: int,
    bottleneck_multiplier: float = 1.0,
    se_ratio: float | None = None,
) -> StageParams:
    """Stage parameters from RegNet's (d, w_0, w_a, w_m, g) (paper section 3.3, eq. 2-4).

    ``initial_width`` is w_0, ``width_slope`` w_a, ``width_multiplier`` w_m. Block ``j`` gets the
    continuous width ``u_j = w_0 + w_a * j``; ``s_j = round(log(u_j / w_0) / log(w_m))``; its width
    is ``w_0 * w_m ** s_j`` rounded to a multiple of 8. Consecutive blocks of equal width form a
    stage. Finally each bottleneck width is made divisible by its group width
    (``g = min(g, w_b)``) and the stage width recomputed from it.
    """
    w_0, w_a, w_m = initial_width, width_slope, width_multiplier  # the paper's symbols
    if depth < 1 or w_a < 0 or w_0 <= 0 or w_m <= 1 or w_0 % QUANTUM:
        raise ConfigError(
            "RegNet: need depth >= 1, width_slope >= 0, width_multiplier > 1 and initial_width "
            f"a positive multiple of 8; got depth={depth}, initial_width={w_0}, "
            f"width_slope={w_a}, width_multiplier={w_m}"
        )
    block_widths = []
    for index in range(depth):
        steps = round(math.log((w_0 + w_a * index) / w_0) / math.log(w_m))
        block_widths.append(round(w_0 * w_m**steps / QUANTUM) * QUANTUM)
    widths: list[int] = []
    depths: list[int] = []
    for width in block_widths:
        if widths and widths[-1] == width:
            depths[-1] += 1
        else:
            widths.append(width)
            depths.append(1)
    bottlenecks = [int(width * bottleneck_multiplier) for width in widths]
    groups = [min(group_width, bottleneck) for bottleneck in bottlenecks]
    bottlenecks = [make_divisible(b, g) for b, g in zip(bottlenecks, groups, strict=True)]
    widths = [int(b / bottleneck_multiplier) for b in bottlenecks]
    return StageParams(
        tuple(widths),
        tuple(depths),
        tuple(groups),
        (bottleneck_multiplier,) * len(widths),
        se_ratio,
    )


class BottleneckTransform(nn.Sequential):
    """``a`` 1x1 -> ``b`` grouped 3x3 (stride) -> [``se``] -> ``c`` 1x1 (linear).

    Bottleneck width ``w_b = round(width_out * bottleneck_multiplier)`` in ``w_b / group_width``
    groups; the SE squeeze width is ``round(se_ratio * width_in)`` (relative to the block input).
    """

    def __init__(
        self,
        width_in: int,
        width_out: int,
        stride: int,
        norm_layer: Callable[..., nn.Module],
        activation_layer: Callable[..., nn.Module],
        group_width: int,
        bottleneck_multiplier: float,
        se_ratio: float | None,
    ) -> None:
        bottleneck = round(width_out * bottleneck_multiplier)
        conv = partial(ConvNormActivation, norm_layer=norm_layer)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["a"] = conv(width_in, bottleneck, 1, activation_layer=activation_layer)
        layers["b"] = conv(
            bottleneck,
            bottleneck,
            3,
            stride,
            groups=bottleneck // group_width,
            activation_layer=activation_layer,
        )
        if se_ratio:
            layers["se"] = SqueezeExcitation(
                bottleneck, round(se_ratio * width_in), activation=activation_layer
            )
        layers["c"] = conv(bottleneck, width_out, 1, activation_layer=None)
        super().__init__(layers)


class ResBottleneckBlock(nn.Module):
    """``activation(shortcut(x) + f(x))``; the shortcut is a 1x1 conv + norm (``proj``) when the
    width or the resolution changes, else the identity."""

    def __init__(
        self,
        width_in: int,
        width_out: int,
        stride: int,
        norm_layer: Callable[..., nn.Module],
        activation_layer: Callable[..., nn.Module],
        group_width: int = 1,
        bottleneck_multiplier: float = 1.0,
        se_ratio: float | None = None,
    ) -> None:
        super().__init__()
        self.proj = None
        if width_in != width_out or stride != 1:
            self.proj = ConvNormActivation(
                width_in, width_out, 1, stride, norm_layer=norm_layer, activation_layer=None
            )
        self.f = BottleneckTransform(
            width_in,
            width_out,
            stride,
            norm_layer,
            activation_layer,
            group_width,
            bottleneck_multiplier,
            se_ratio,
        )
        self.activation = activation_layer(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.proj is None else self.proj(x)
        return self.activation(shortcut + self.f(x))


class RegNet(nn.Module):
    """3x3/2 stem (``stem_width``), four stages (``trunk_output.block1..4``, each starting with a
    stride-2 block), global pool, ``fc``."""

    def __init__(
        self,
        params: StageParams,
        num_classes: int = 1000,
        in_channels: int = 3,
        stem_width: int = 32,
        norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
        activation: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        check_positive("RegNet", num_classes=num_classes, in_channels=in_channels)
        self.stem = ConvNormActivation(
            in_channels, stem_width, 3, 2, norm_layer=norm_layer, activation_layer=activation
        )
        width = stem_width
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        for stage, (width_out, depth, group_width, multiplier) in enumerate(
            zip(
                params.widths,
                params.depths,
                params.group_widths,
                params.bottleneck_multipliers,
                strict=True,
            ),
            start=1,
        ):
            blocks: OrderedDict[str, nn.Module] = OrderedDict()
            for index in range(depth):
                blocks[f"block{stage}-{index}"] = ResBottleneckBlock(
                    width if index == 0 else width_out,
                    width_out,
                    2 if index == 0 else 1,
                    norm_layer,
                    activation,
                    group_width,
                    multiplier,
                    params.se_ratio,
                )
            stages[f"block{stage}"] = nn.Sequential(blocks)
            width = width_out
        self.trunk_output = nn.Sequential(stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)
        init_regnet(self)

    @checked_forward
    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.trunk_output(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


def init_regnet(model: nn.Module) -> None:
    """RegNet's ResNet-style init (C4): conv weights N(0, 2 / fan_out) with
    ``fan_out = k_h * k_w * C_out`` (Kaiming fan_out); conv biases (only the SE's 1x1 convs have
    them) keep PyTorch's default, as torchvision; BatchNorm 1/0; linear N(0, 0.01), bias 0."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)


@register_model(
    info=ModelInfo(
        family="regnet",
        min_input=(1, 1),
        first_conv="stem.0",
        classifier="fc",
        cam_layer="trunk_output.block4",
        torchvision=True,
        published=Published(
            74.046,
            "ImageNet-1k",
            "torchvision 0.29 docs, RegNet_Y_400MF_Weights.IMAGENET1K_V1 acc@1",
        ),
    )
)
def regnet_y_400mf(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> RegNet:
    """RegNetY-400MF: d=16, w_0=48, w_a=27.89, w_m=2.09, g=8, SE ratio 0.25 (paper appendix,
    torchvision's values). Keyword arguments go to :class:`RegNet`."""
    params = regnet_stages(16, 48, 27.89, 2.09, 8, se_ratio=0.25)
    return RegNet(params, num_classes=num_classes, in_channels=in_channels, **kwargs)
