"""ShuffleNetV2: channel split, two cheap branches, concatenation and channel shuffle (C2).

Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design"
(arXiv:1807.11164), Fig. 3(c, d) and Table 5. Seed 001 lists it among edge-device models. Module
names follow torchvision's ``shufflenet_v2_x1_0`` (``conv1``, ``stage2..4``, ``conv5``, ``fc``;
``branch1``/``branch2`` in each unit) so its checkpoints load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from cnnkit.errors import ConfigError, ShapeError
from cnnkit.models._checks import check_positive, checked_forward
from cnnkit.models._registry import ModelInfo, Published, register_model


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave ``groups`` channel groups: (N, g*c, H, W) -> view (N, g, c, H, W) -> swap the
    two channel axes -> (N, c*g, H, W). Output channel ``i*g + j`` is input channel ``j*c + i``
    (Zhang et al., "ShuffleNet", arXiv:1707.01083, Fig. 1)."""
    batch, channels, height, width = x.shape
    if channels % groups:
        raise ShapeError(f"channel_shuffle: {channels} channels do not split into {groups} groups")
    x = x.view(batch, groups, channels // groups, height, width)
    return x.transpose(1, 2).contiguous().view(batch, channels, height, width)


def _depthwise(channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, stride, 1, groups=channels, bias=False)


class InvertedResidual(nn.Module):
    """The ShuffleNetV2 unit.

    Stride 1 (Fig. 3c): split the channels in two halves, keep one, transform the other with
    ``1x1 -> dw3x3 -> 1x1`` (``branch2``), concatenate, shuffle. Stride 2 (Fig. 3d): both branches
    see the whole input; ``branch1`` is ``dw3x3/2 -> 1x1``, outputs are concatenated and shuffled.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if stride not in (1, 2, 3):
            raise ConfigError(f"ShuffleNetV2 unit: stride must be 1, 2 or 3, got {stride}")
        branch = out_channels // 2
        if stride == 1 and in_channels != 2 * branch:
            raise ConfigError(
                f"ShuffleNetV2 unit: stride 1 needs in_channels == 2 * (out_channels // 2), "
                f"got in_channels={in_channels}, out_channels={out_channels}"
            )
        self.stride = stride
        if stride > 1:
            self.branch1 = nn.Sequential(
                _depthwise(in_channels, stride),
                nn.BatchNorm2d(in_channels),
                nn.Conv2d(in_channels, branch, 1, bias=False),
                nn.BatchNorm2d(branch),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(in_channels if stride > 1 else branch, branch, 1, bias=False),
            nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
            _depthwise(branch, stride),
            nn.BatchNorm2d(branch),
            nn.Conv2d(branch, branch, 1, bias=False),
            nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            kept, transformed = x.chunk(2, dim=1)
            out = torch.cat((kept, self.branch2(transformed)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """Stem conv 3x3/2 + maxpool 3x3/2, three stages of units (the first of each strides 2),
    ``conv5`` 1x1, global mean, ``fc``. ``stages_out_channels`` = (stem, stage2, stage3, stage4,
    conv5) widths (Table 5). Initialisation is PyTorch's default, as torchvision's.
    """

    # Set by name in __init__'s loop (torchvision's attribute names), declared for the checker.
    stage2: nn.Sequential
    stage3: nn.Sequential
    stage4: nn.Sequential

    def __init__(
        self,
        stages_repeats: Sequence[int],
        stages_out_channels: Sequence[int],
        num_classes: int = 1000,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_positive("ShuffleNetV2", num_classes=num_classes, in_channels=in_channels)
        if len(stages_repeats) != 3 or min(stages_repeats) < 1:
            raise ConfigError(
                f"ShuffleNetV2: stages_repeats must be 3 ints >= 1, got {stages_repeats}"
            )
        if len(stages_out_channels) != 5 or min(stages_out_channels) < 1:
            raise ConfigError(
                f"ShuffleNetV2: stages_out_channels must be 5 ints >= 1, got {stages_out_channels}"
            )
        stem = stages_out_channels[0]
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, stem, 3, 2, 1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        )
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        width = stem
        for index, (repeats, out_channels) in enumerate(
            zip(stages_repeats, stages_out_channels[1:4], strict=True), start=2
        ):
            units = [InvertedResidual(width, out_channels, 2)]
            units += [InvertedResidual(out_channels, out_channels, 1) for _ in range(repeats - 1)]
            setattr(self, f"stage{index}", nn.Sequential(*units))
            width = out_channels
        last = stages_out_channels[-1]
        self.conv5 = nn.Sequential(
            nn.Conv2d(width, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU(inplace=True)
        )
        self.fc = nn.Linear(last, num_classes)

    @checked_forward
    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        x = self.conv5(x).mean((2, 3))
        return self.fc(x)


@register_model(
    info=ModelInfo(
        family="shufflenet",
        min_input=(1, 1),
        first_conv="conv1.0",
        classifier="fc",
        cam_layer="conv5",
        torchvision=True,
        published=Published(
            69.362,
            "ImageNet-1k",
            "torchvision 0.29 docs, ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1 acc@1",
        ),
    )
)
def shufflenet_v2_x1_0(
    num_classes: int = 1000, in_channels: int = 3, **kwargs: Any
) -> ShuffleNetV2:
    """ShuffleNetV2 1.0x (Ma et al., 2018, Table 5): repeats (4, 8, 4), widths
    (24, 116, 232, 464, 1024)."""
    return ShuffleNetV2(
        (4, 8, 4),
        (24, 116, 232, 464, 1024),
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )
