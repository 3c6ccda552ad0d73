"""ResNet (He et al., 2015), ResNeXt, Wide ResNet and pre-activation ResNet (He et al., 2016).

A residual block computes ``y = relu(F(x) + shortcut(x))`` (003, 002): the identity path gives
gradients a direct route, ``dL/dx = dL/dy (dF/dx + I)``. When a block changes the stride or the
width, the shortcut is a 1x1 conv + BN (``downsample``). ``Bottleneck`` (1x1 -> 3x3 -> 1x1, x4
expansion) strides in its 3x3 conv, as torchvision's "ResNet v1.5" does. ResNeXt sets ``groups``
(cardinality) and ``width_per_group``; Wide ResNet doubles the bottleneck width.

Module names follow torchvision (``conv1, bn1, relu, maxpool, layer1..4, avgpool, fc``) so that a
torchvision checkpoint loads with ``strict=True``. ``small_input=True`` is seed 003's stem for
28/32 px images: ``conv1`` becomes a 3x3 stride-1 conv and ``maxpool`` the identity (no keys).
With ``in_channels=1, num_classes=10`` that gives 11,172,810 / 21,280,970 / 23,519,690
parameters for ResNet-18/34/50 (003's comments say 11,173,962 / 21,282,122 / 23,508,234, which
its own code does not produce).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.models._checks import check_positive, checked_forward
from cnnkit.models._registry import ModelInfo, Published, register_model
from cnnkit.nn.init import init_kaiming_fan_out_


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, bias=False
    )


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34): ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        if groups != 1 or width_per_group != 64:
            raise ConfigError("BasicBlock: groups and width_per_group need a Bottleneck ResNet")
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride, groups) -> 1x1 expand (x4), plus the shortcut (ResNet-50+).

    Inner width ``int(channels * width_per_group / 64) * groups``: ``channels`` for ResNet,
    ``2 channels`` for Wide ResNet-50-2, ``4 * 32 = 128`` at the first stage of ResNeXt-50 32x4d.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        width = int(channels * (width_per_group / 64.0)) * groups
        self.conv1 = _conv1x1(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, channels * self.expansion)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al., 2016, "Identity Mappings"; 002):
    ``x + conv2(relu(bn2(conv1(relu(bn1(x))))))`` -- nothing after the addition, so the identity
    path is clean from input to output. A projection shortcut (1x1 conv, no BN) reads the
    pre-activated input. ``preactivate=False`` skips ``bn1`` for the block right after the stem,
    which already ends in BN-ReLU (the paper's note on the first unit).
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        width_per_group: int = 64,
        preactivate: bool = True,
    ) -> None:
        super().__init__()
        if groups != 1 or width_per_group != 64:
            raise ConfigError("PreActBlock: groups and width_per_group are not supported")
        self.bn1 = nn.BatchNorm2d(in_channels) if preactivate else nn.Identity()
        self.relu = nn.ReLU()
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(activated)
        out = self.conv1(activated)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + identity


Block = type[BasicBlock] | type[Bottleneck] | type[PreActBlock]


class ResNet(nn.Module):
    """Stem -> four stages of residual blocks (64, 128, 256, 512 channels x expansion) -> fc.

    Args:
        block: :class:`BasicBlock`, :class:`Bottleneck` or :class:`PreActBlock`.
        layers: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        num_classes, in_channels: classifier outputs and image channels.
        small_input: 003's stem for 28/32 px images (3x3 stride-1 ``conv1``, no max-pool).
        groups, width_per_group: ResNeXt cardinality and width (Bottleneck only).
        zero_init_residual: start each residual branch's last BN at 0 (Goyal et al., 2017),
            so every block begins as the identity.

    Initialisation as torchvision: convs Kaiming normal (fan_out, ReLU), norms 1/0, the ``fc``
    keeps PyTorch's default.
    """

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        check_positive("resnet", num_classes=num_classes, in_channels=in_channels)
        check_positive("resnet", groups=groups, width_per_group=width_per_group)
        if len(layers) != 4:
            raise ConfigError(f"resnet: layers must give 4 stages, got {tuple(layers)}")
        self.small_input = small_input
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = (
            nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        )
        self._in_channels = 64
        self._groups, self._width = groups, width_per_group
        self.layer1 = self._make_stage(block, 64, layers[0], stride=1, first=True)
        self.layer2 = self._make_stage(block, 128, layers[1], stride=2)
        self.layer3 = self._make_stage(block, 256, layers[2], stride=2)
        self.layer4 = self._make_stage(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        init_kaiming_fan_out_(self)
        if zero_init_residual:
            self._zero_init_residual()

    def _make_stage(
        self, block: Block, channels: int, blocks: int, stride: int, first: bool = False
    ) -> nn.Sequential:
        out_channels = channels * block.expansion
        downsample = None
        if stride != 1 or self._in_channels != out_channels:
            projection = _conv1x1(self._in_channels, out_channels, stride)
            # pre-activation shortcuts are a bare conv: their input is already normalised
            downsample = (
                projection
                if block is PreActBlock
                else nn.Sequential(projection, nn.BatchNorm2d(out_channels))
            )
        options: dict[str, Any] = {"groups": self._groups, "width_per_group": self._width}
        extra = {"preactivate": False} if block is PreActBlock and first else {}
        stage = [block(self._in_channels, channels, stride, downsample, **options, **extra)]
        self._in_channels = out_channels
        stage += [block(out_channels, channels, **options) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    @torch.no_grad()
    def _zero_init_residual(self) -> None:
        for module in self.modules():
            if isinstance(module, Bottleneck):
                module.bn3.weight.zero_()
            elif isinstance(module, BasicBlock):
                module.bn2.weight.zero_()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and the four stages: the last feature map, before pooling."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    @checked_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class PreActResNet(ResNet):
    """Pre-activation ResNet: :class:`PreActBlock` stages, then ``final_norm`` and ReLU before
    pooling (the last unit's extra activation, He et al., 2016)."""

    def __init__(self, layers: Sequence[int], **kwargs: Any) -> None:
        if kwargs.get("zero_init_residual"):
            raise ConfigError("preact_resnet: zero_init_residual has no BN to zero")
        super().__init__(PreActBlock, layers, **kwargs)
        self.final_norm = nn.BatchNorm2d(512 * PreActBlock.expansion)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem, the four stages, then the final BN-ReLU."""
        return self.relu(self.final_norm(super().forward_features(x)))


def _info(weights: str | None = None, top1: float | None = None) -> ModelInfo:
    published = None
    if weights is not None and top1 is not None:
        source = f"torchvision 0.29 docs, {weights}.IMAGENET1K_V1 acc@1"
        published = Published(top1, "ImageNet-1k", source)
    return ModelInfo(
        family="resnet",
        min_input=(1, 1),
        first_conv="conv1",
        classifier="fc",
        cam_layer="layer4",
        torchvision=weights is not None,
        published=published,
    )


@register_model(info=_info("ResNet18_Weights", 69.758))
def resnet18(**kwargs: Any) -> ResNet:
    """ResNet-18: BasicBlock x (2, 2, 2, 2). Keyword arguments: :class:`ResNet`."""
    return ResNet(BasicBlock, (2, 2, 2, 2), **kwargs)


@register_model(info=_info("ResNet34_Weights", 73.314))
def resnet34(**kwargs: Any) -> ResNet:
    """ResNet-34: BasicBlock x (3, 4, 6, 3). Keyword arguments: :class:`ResNet`."""
    return ResNet(BasicBlock, (3, 4, 6, 3), **kwargs)


@register_model(info=_info("ResNet50_Weights", 76.130))
def resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50: Bottleneck x (3, 4, 6, 3). Keyword arguments: :class:`ResNet`."""
    return ResNet(Bottleneck, (3, 4, 6, 3), **kwargs)


@register_model(info=_info("ResNet101_Weights", 77.374))
def resnet101(**kwargs: Any) -> ResNet:
    """ResNet-101: Bottleneck x (3, 4, 23, 3). Keyword arguments: :class:`ResNet`."""
    return ResNet(Bottleneck, (3, 4, 23, 3), **kwargs)


@register_model(info=_info("ResNet152_Weights", 78.312))
def resnet152(**kwargs: Any) -> ResNet:
    """ResNet-152: Bottleneck x (3, 8, 36, 3). Keyword arguments: :class:`ResNet`."""
    return ResNet(Bottleneck, (3, 8, 36, 3), **kwargs)


@register_model(info=_info("ResNeXt50_32X4D_Weights", 77.618))
def resnext50_32x4d(**kwargs: Any) -> ResNet:
    """ResNeXt-50 32x4d (Xie et al., 2017): 32 groups of width 4. Keyword arguments:
    :class:`ResNet`."""
    return ResNet(Bottleneck, (3, 4, 6, 3), groups=32, width_per_group=4, **kwargs)


@register_model(info=_info("Wide_ResNet50_2_Weights", 78.468))
def wide_resnet50_2(**kwargs: Any) -> ResNet:
    """Wide ResNet-50-2 (Zagoruyko & Komodakis, 2016): bottlenecks twice as wide. Keyword
    arguments: :class:`ResNet`."""
    return ResNet(Bottleneck, (3, 4, 6, 3), width_per_group=128, **kwargs)


@register_model(info=_info())
def preact_resnet18(**kwargs: Any) -> PreActResNet:
    """Pre-activation ResNet-18 (He et al., 2016): PreActBlock x (2, 2, 2, 2). Keyword arguments:
    :class:`ResNet` (no ``zero_init_residual``)."""
    return PreActResNet((2, 2, 2, 2), **kwargs)
