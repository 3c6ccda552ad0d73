"""ConvNeXt: a ResNet modernised step by step towards a vision Transformer (C2).

Liu et al., "A ConvNet for the 2020s" (arXiv:2201.03545), section 2 and Fig. 4: patchify stem
(4x4/4), depthwise 7x7 convs, inverted bottleneck with one GELU, LayerNorm, separate 2x2/2
downsampling layers, layer scale and stochastic depth. Seed 001 names it as the modern CNN that
borrows Transformer design. Module names follow torchvision's ``convnext_tiny`` so its checkpoints
load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from cnnkit.errors import ConfigError
from cnnkit.models._checks import check_positive, checked_forward
from cnnkit.models._registry import ModelInfo, Published, register_model
from cnnkit.nn.conv_norm_act import ConvNormActivation
from cnnkit.nn.layer_norm import LayerNorm2d
from cnnkit.nn.stochastic_depth import StochasticDepth


@dataclass(frozen=True)
class StageConfig:
    """One stage: block width, width after the downsampling layer that follows (``None`` for the
    last stage), and number of blocks."""

    channels: int
    out_channels: int | None
    num_layers: int


# ConvNeXt-T: C = (96, 192, 384, 768), B = (3, 3, 9, 3) (paper section 2.7).
TINY: tuple[StageConfig, ...] = (
    StageConfig(96, 192, 3),
    StageConfig(192, 384, 3),
    StageConfig(384, 768, 9),
    StageConfig(768, None, 3),
)


class Permute(nn.Module):
    """Reorder the axes of a tensor (``torch.permute``); holds no parameters."""

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: Tensor) -> Tensor:
        return torch.permute(x, self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class CNBlock(nn.Module):
    """``x + drop_path(gamma * pwconv2(GELU(pwconv1(LN(dwconv7x7(x))))))``.

    The pointwise convs are ``nn.Linear`` over a channels-last view (what the paper's code does);
    ``layer_scale`` is gamma, a learnable (C, 1, 1) scale initialised to ``layer_scale`` (1e-6,
    Touvron et al. 2021, "Going deeper with Image Transformers").
    """

    def __init__(self, dim: int, layer_scale: float, stochastic_depth_prob: float) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), float(layer_scale)))
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, x: Tensor) -> Tensor:
        result = self.stochastic_depth(self.layer_scale * self.block(x))
        result += x
        return result


class ConvNeXt(nn.Module):
    """Stem (4x4/4 conv + LayerNorm2d), then per stage: blocks, then LayerNorm2d + 2x2/2 conv.

    ``features`` alternates stages and downsampling layers (indices 1, 3, 5, 7 are stages); the
    head is ``avgpool`` then ``LayerNorm2d -> Flatten -> Linear``. The stochastic-depth rate grows
    linearly from 0 to ``stochastic_depth_prob`` over the blocks: ``p_i = p * i / (N - 1)``.
    """

    def __init__(
        self,
        stages: Sequence[StageConfig],
        stochastic_depth_prob: float = 0.0,
        layer_scale: float = 1e-6,
        num_classes: int = 1000,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_positive("ConvNeXt", num_classes=num_classes, in_channels=in_channels)
        if not stages:
            raise ConfigError("ConvNeXt: stages must not be empty")
        if not 0.0 <= stochastic_depth_prob <= 1.0:
            raise ConfigError(
                f"ConvNeXt: stochastic_depth_prob must be in [0, 1], got {stochastic_depth_prob!r}"
            )
        norm_layer = partial(LayerNorm2d, eps=1e-6)
        layers: list[nn.Module] = [
            ConvNormActivation(
                in_channels,
                stages[0].channels,
                kernel_size=4,
                stride=4,
                padding=0,
                norm_layer=norm_layer,
                activation_layer=None,
                bias=True,
            )
        ]
        total_blocks = sum(stage.num_layers for stage in stages)
        block_index = 0
        for stage in stages:
            blocks = []
            for _ in range(stage.num_layers):
                # max(1, ...) keeps a one-block network from dividing by zero
                probability = stochastic_depth_prob * block_index / max(1, total_blocks - 1)
                blocks.append(CNBlock(stage.channels, layer_scale, probability))
                block_index += 1
            layers.append(nn.Sequential(*blocks))
            if stage.out_channels is not None:
                layers.append(
                    nn.Sequential(
                        norm_layer(stage.channels),
                        nn.Conv2d(stage.channels, stage.out_channels, kernel_size=2, stride=2),
                    )
                )
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        last = stages[-1].out_channels or stages[-1].channels
        self.classifier = nn.Sequential(
            norm_layer(last), nn.Flatten(1), nn.Linear(last, num_classes)
        )
        init_convnext(self)

    @checked_forward
    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)))


def init_convnext(model: nn.Module) -> None:
    """ConvNeXt's init (C4): conv and linear weights truncated normal, std 0.02 (cut at +-2,
    i.e. not cut in practice); biases 0; LayerNorm keeps weight 1, bias 0."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


@register_model(
    info=ModelInfo(
        family="convnext",
        min_input=(32, 32),
        first_conv="features.0.0",
        classifier="classifier.2",
        cam_layer="features.7",
        torchvision=True,
        published=Published(
            82.520,
            "ImageNet-1k",
            "torchvision 0.29 docs, ConvNeXt_Tiny_Weights.IMAGENET1K_V1 acc@1 "
            "(paper Table 1: 82.1)",
        ),
    )
)
def convnext_tiny(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ConvNeXt:
    """ConvNeXt-T (Liu et al., 2022). Keyword arguments go to :class:`ConvNeXt`
    (``stochastic_depth_prob`` defaults to 0.1, ``layer_scale`` to 1e-6)."""
    kwargs.setdefault("stochastic_depth_prob", 0.1)
    return ConvNeXt(TINY, num_classes=num_classes, in_channels=in_channels, **kwargs)
