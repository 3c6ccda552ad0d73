"""EfficientNet B0-B7: one searched baseline scaled in width, depth and resolution (C2).

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks"
(arXiv:1905.11946): Table 1 is the B0 baseline, section 3.3 the compound scaling
``depth = alpha^phi, width = beta^phi, resolution = gamma^phi``. Seed 001 tabulates the
coefficients; :data:`COEFFICIENTS` is the checked version (see docs/models_modern.md for where 001
is wrong). Module names follow torchvision's ``efficientnet_b*`` so its checkpoints load with
``strict=True``. Also here: :class:`FusedMBConv` (EfficientNetV2, Tan & Le 2021, arXiv:2104.00298).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from cnnkit.errors import ConfigError, UnknownNameError
from cnnkit.models._checks import check_positive, checked_forward
from cnnkit.models._registry import ModelInfo, Published, register_model
from cnnkit.models.mobilenetv2 import make_divisible
from cnnkit.nn.conv_norm_act import ConvNormActivation
from cnnkit.nn.squeeze_excite import SqueezeExcitation
from cnnkit.nn.stochastic_depth import StochasticDepth


@dataclass(frozen=True)
class Coefficients:
    """Compound-scaling coefficients of one variant and the head regularisation it is trained with.

    ``width_mult`` multiplies channels (beta^phi), ``depth_mult`` multiplies block repeats
    (alpha^phi), ``resolution`` is the input side (gamma^phi times 224, rounded as published),
    ``dropout`` is the rate before the classifier. ``norm_eps``/``norm_momentum`` are the
    BatchNorm settings torchvision uses for that variant (B5-B7 keep TF's 1e-3 / 0.01).
    """

    width_mult: float
    depth_mult: float
    resolution: int
    dropout: float
    norm_eps: float = 1e-5
    norm_momentum: float = 0.1


# The one coefficient table. Source: the reference TF implementation's `efficientnet_params`
# (tensorflow/tpu models/official/efficientnet/efficientnet_builder.py, (width, depth, res,
# dropout)) and torchvision 0.29 `efficientnet_b0..b7`, which agree. Stochastic depth is 0.2 for
# every variant (paper section 5.2: survival probability 0.8).
_TF_NORM = {"norm_eps": 1e-3, "norm_momentum": 0.01}
COEFFICIENTS: dict[str, Coefficients] = {
    "b0": Coefficients(1.0, 1.0, 224, 0.2),
    "b1": Coefficients(1.0, 1.1, 240, 0.2),
    "b2": Coefficients(1.1, 1.2, 260, 0.3),
    "b3": Coefficients(1.2, 1.4, 300, 0.3),
    "b4": Coefficients(1.4, 1.8, 380, 0.4),
    "b5": Coefficients(1.6, 2.2, 456, 0.4, **_TF_NORM),
    "b6": Coefficients(1.8, 2.6, 528, 0.5, **_TF_NORM),
    "b7": Coefficients(2.0, 3.1, 600, 0.5, **_TF_NORM),
}
STOCHASTIC_DEPTH_PROB = 0.2


@dataclass(frozen=True)
class MBConvConfig:
    """One stage: expansion ratio, kernel, first stride, input/output widths, repeats.

    ``fused=True`` builds :class:`FusedMBConv` blocks instead of :class:`MBConv`.
    """

    expand_ratio: float
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    num_layers: int
    fused: bool = False

    def scaled(self, width_mult: float, depth_mult: float) -> MBConvConfig:
        """Widths ``make_divisible(c * width_mult, 8)``, repeats ``ceil(n * depth_mult)``."""
        return replace(
            self,
            in_channels=make_divisible(self.in_channels * width_mult, 8),
            out_channels=make_divisible(self.out_channels * width_mult, 8),
            num_layers=math.ceil(self.num_layers * depth_mult),
        )


# EfficientNet-B0, Table 1 of the paper (stages 2-8; stage 1 is the stem, stage 9 the head).
B0_STAGES: tuple[MBConvConfig, ...] = (
    MBConvConfig(1, 3, 1, 32, 16, 1),
    MBConvConfig(6, 3, 2, 16, 24, 2),
    MBConvConfig(6, 5, 2, 24, 40, 2),
    MBConvConfig(6, 3, 2, 40, 80, 3),
    MBConvConfig(6, 5, 1, 80, 112, 3),
    MBConvConfig(6, 5, 2, 112, 192, 4),
    MBConvConfig(6, 3, 1, 192, 320, 1),
)


class MBConv(nn.Module):
    """Mobile inverted bottleneck with SE: expand 1x1 -> depthwise kxk -> SE -> project 1x1.

    SiLU activations; the SE squeezes to ``max(1, in_channels // 4)`` (a quarter of the block's
    *input* width, as the reference code). The residual branch passes through stochastic depth
    with rate ``stochastic_depth_prob`` when ``stride == 1`` and widths match.
    """

    def __init__(
        self,
        config: MBConvConfig,
        stochastic_depth_prob: float,
        norm_layer: Callable[..., nn.Module],
    ) -> None:
        super().__init__()
        _check_stride(config)
        self.use_res_connect = config.stride == 1 and config.in_channels == config.out_channels
        expanded = make_divisible(config.in_channels * config.expand_ratio, 8)
        layers: list[nn.Module] = []
        if expanded != config.in_channels:
            layers.append(
                ConvNormActivation(
                    config.in_channels, expanded, 1, norm_layer=norm_layer, activation_layer=nn.SiLU
                )
            )
        layers += [
            ConvNormActivation(
                expanded,
                expanded,
                config.kernel,
                config.stride,
                groups=expanded,
                norm_layer=norm_layer,
                activation_layer=nn.SiLU,
            ),
            SqueezeExcitation(
                expanded,
                max(1, config.in_channels // 4),
                activation=partial(nn.SiLU, inplace=True),
            ),
            ConvNormActivation(
                expanded, config.out_channels, 1, norm_layer=norm_layer, activation_layer=None
            ),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = config.out_channels

    def forward(self, x: Tensor) -> Tensor:
        result = self.block(x)
        if self.use_res_connect:
            result = self.stochastic_depth(result)
            result += x
        return result


class FusedMBConv(nn.Module):
    """EfficientNetV2's fused block: one full kxk conv replaces expand 1x1 + depthwise kxk.

    With expansion: kxk conv (SiLU) to the expanded width, then 1x1 projection (linear). Without
    expansion: a single kxk conv (SiLU). No SE. Stochastic depth on the residual as in
    :class:`MBConv`.
    """

    def __init__(
        self,
        config: MBConvConfig,
        stochastic_depth_prob: float,
        norm_layer: Callable[..., nn.Module],
    ) -> None:
        super().__init__()
        _check_stride(config)
        self.use_res_connect = config.stride == 1 and config.in_channels == config.out_channels
        expanded = make_divisible(config.in_channels * config.expand_ratio, 8)
        conv = partial(ConvNormActivation, norm_layer=norm_layer, activation_layer=nn.SiLU)
        if expanded != config.in_channels:
            layers = [
                conv(config.in_channels, expanded, config.kernel, config.stride),
                conv(expanded, config.out_channels, 1, activation_layer=None),  # linear projection
            ]
        else:
            layers = [conv(config.in_channels, config.out_channels, config.kernel, config.stride)]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = config.out_channels

    def forward(self, x: Tensor) -> Tensor:
        result = self.block(x)
        if self.use_res_connect:
            result = self.stochastic_depth(result)
            result += x
        return result


class EfficientNet(nn.Module):
    """Stem 3x3/2 -> stages of (Fused)MBConv -> 1x1 head conv -> pool -> dropout -> linear.

    ``stages`` are already scaled. The stochastic-depth rate grows linearly with the block's
    global index ``i`` over ``N`` blocks: ``p_i = stochastic_depth_prob * i / N`` (torchvision's
    rule). The head conv has ``last_channel`` outputs (default ``4 x`` the last stage width).
    """

    def __init__(
        self,
        stages: Sequence[MBConvConfig],
        dropout: float,
        stochastic_depth_prob: float = STOCHASTIC_DEPTH_PROB,
        num_classes: int = 1000,
        in_channels: int = 3,
        norm_layer: Callable[..., nn.Module] | None = None,
        last_channel: int | None = None,
    ) -> None:
        super().__init__()
        check_positive("EfficientNet", num_classes=num_classes, in_channels=in_channels)
        if not stages:
            raise ConfigError("EfficientNet: stages must not be empty")
        for name, value in (("dropout", dropout), ("stochastic_depth_prob", stochastic_depth_prob)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"EfficientNet: {name} must be in [0, 1], got {value!r}")
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        layers: list[nn.Module] = [
            ConvNormActivation(
                in_channels,
                stages[0].in_channels,
                3,
                2,
                norm_layer=norm_layer,
                activation_layer=nn.SiLU,
            )
        ]
        total_blocks = sum(stage.num_layers for stage in stages)
        block_index = 0
        for stage in stages:
            block_type = FusedMBConv if stage.fused else MBConv
            blocks: list[nn.Module] = []
            for repeat in range(stage.num_layers):
                config = (
                    stage
                    if repeat == 0
                    else replace(stage, in_channels=stage.out_channels, stride=1)
                )
                probability = stochastic_depth_prob * block_index / total_blocks
                blocks.append(block_type(config, probability, norm_layer))
                block_index += 1
            layers.append(nn.Sequential(*blocks))
        head_in = stages[-1].out_channels
        head_out = last_channel if last_channel is not None else 4 * head_in
        layers.append(
            ConvNormActivation(
                head_in, head_out, 1, norm_layer=norm_layer, activation_layer=nn.SiLU
            )
        )
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout, inplace=True), nn.Linear(head_out, num_classes)
        )
        init_efficientnet(self)

    @checked_forward
    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def init_efficientnet(model: nn.Module) -> None:
    """torchvision's EfficientNet init (C4): convs Kaiming-normal fan_out; norms 1/0; linear
    weights uniform in ``+-1 / sqrt(out_features)``; biases 0."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            bound = 1.0 / math.sqrt(module.out_features)
            nn.init.uniform_(module.weight, -bound, bound)
            nn.init.zeros_(module.bias)


def scaled_stages(variant: str) -> tuple[MBConvConfig, ...]:
    """B0's stages scaled by ``COEFFICIENTS[variant]`` (width and depth)."""
    coefficients = _coefficients(variant)
    return tuple(
        stage.scaled(coefficients.width_mult, coefficients.depth_mult) for stage in B0_STAGES
    )


def _efficientnet(variant: str, **kwargs: Any) -> EfficientNet:
    coefficients = _coefficients(variant)
    kwargs.setdefault("dropout", coefficients.dropout)
    kwargs.setdefault(
        "norm_layer",
        partial(nn.BatchNorm2d, eps=coefficients.norm_eps, momentum=coefficients.norm_momentum),
    )
    return EfficientNet(scaled_stages(variant), **kwargs)


def _coefficients(variant: str) -> Coefficients:
    if variant not in COEFFICIENTS:
        raise UnknownNameError("EfficientNet variant", variant, COEFFICIENTS)
    return COEFFICIENTS[variant]


def _check_stride(config: MBConvConfig) -> None:
    if config.stride not in (1, 2):
        raise ConfigError(f"EfficientNet block: stride must be 1 or 2, got {config.stride}")


# torchvision 0.29 EfficientNet_B*_Weights.IMAGENET1K_V1 acc@1 (ImageNet-1k val).
_TOP1 = {
    "b0": 77.692,
    "b1": 78.642,
    "b2": 80.608,
    "b3": 82.008,
    "b4": 83.384,
    "b5": 83.444,
    "b6": 84.008,
    "b7": 84.122,
}


def _info(variant: str) -> ModelInfo:
    resolution = COEFFICIENTS[variant].resolution
    return ModelInfo(
        family="efficientnet",
        default_input=(3, resolution, resolution),
        min_input=(1, 1),
        first_conv="features.0.0",
        classifier="classifier.1",
        cam_layer="features.8",
        torchvision=True,
        published=Published(
            _TOP1[variant],
            "ImageNet-1k",
            f"torchvision 0.29 docs, EfficientNet_{variant.upper()}_Weights.IMAGENET1K_V1 acc@1",
        ),
    )


@register_model(info=_info("b0"))
def efficientnet_b0(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B0 (width 1.0, depth 1.0, 224 px). Keyword arguments go to
    :class:`EfficientNet` (``dropout``, ``stochastic_depth_prob``, ``norm_layer``)."""
    return _efficientnet("b0", num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(info=_info("b1"))
def efficientnet_b1(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B1 (width 1.0, depth 1.1, 240 px)."""
    return _efficientnet("b1", num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(info=_info("b2"))
def efficientnet_b2(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B2 (width 1.1, depth 1.2, 260 px)."""
    return _efficientnet("b2", num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(info=_info("b3"))
def efficientnet_b3(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B3 (width 1.2, depth 1.4, 300 px)."""
    return _efficientnet("b3", num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(info=_info("b4"))
def efficientnet_b4(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B4 (width 1.4, depth 1.8, 380 px)."""
    return _efficientnet("b4", num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(info=_info("b5"))
def efficientnet_b5(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B5 (width 1.6, depth 2.2, 456 px; BatchNorm eps 1e-3, momentum 0.01)."""
    return _efficientnet("b5", num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(info=_info("b6"))
def efficientnet_b6(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B6 (width 1.8, depth 2.6, 528 px; BatchNorm eps 1e-3, momentum 0.01)."""
    return _efficientnet("b6", num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(info=_info("b7"))
def efficientnet_b7(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B7 (width 2.0, depth 3.1, 600 px; BatchNorm eps 1e-3, momentum 0.01)."""
    return _efficientnet("b7", num_classes=num_classes, in_channels=in_channels, **kwargs)
