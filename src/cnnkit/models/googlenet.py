"""GoogLeNet / Inception v1 (Szegedy et al., 2014) as torchvision builds it.

An Inception module runs 1x1, 1x1->3x3, 1x1->"5x5" and pool->1x1 branches in parallel and
concatenates them (001): the network chooses its own kernel sizes, and the 1x1 "reduce" convs
keep the larger kernels cheap. Every conv is ``BasicConv2d`` (conv without bias, BN with
eps 0.001, ReLU). torchvision's third branch uses a 3x3 kernel where the paper has 5x5 (a known
torchvision bug, pytorch/vision#906) and its pretrained weights depend on it; this file keeps
3x3 so that checkpoints load and the figures (6,624,904 parameters without the auxiliary heads)
match. ``transform_input=True`` re-normalises ImageNet-normalised input the way torchvision's
pretrained weights expect; it needs 3 input channels.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.models._checks import check_positive, checked_forward
from cnnkit.models._registry import ModelInfo, Published, register_model
from cnnkit.nn.init import init_truncated_normal_

# in_channels, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection (paper's Table 1)
INCEPTION_CONFIG: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNetOutputs(NamedTuple):
    """Training-mode output with ``aux_logits=True``: main logits and the two auxiliary heads."""

    logits: torch.Tensor
    aux_logits2: torch.Tensor | None
    aux_logits1: torch.Tensor | None


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 0.001) -> ReLU; keys ``conv.*`` and ``bn.*``."""

    def __init__(self, in_channels: int, out_channels: int, **conv_options: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_options)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """Four parallel branches concatenated along channels (001's Inception module).

    Output channels ``ch1x1 + ch3x3 + ch5x5 + pool_proj``; spatial size unchanged.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3_reduce: int,
        ch3x3: int,
        ch5x5_reduce: int,
        ch5x5: int,
        pool_proj: int,
    ) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3_reduce, kernel_size=1),
            BasicConv2d(ch3x3_reduce, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5_reduce, kernel_size=1),
            # 3x3, not the paper's 5x5: torchvision's layout, which its checkpoints need
            BasicConv2d(ch5x5_reduce, ch5x5, kernel_size=3, padding=1),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1),
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([branch(x) for branch in branches], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: adaptive 4x4 average pool -> 1x1 conv (128) -> 1024 -> classes."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4)))
        x = F.relu(self.fc1(torch.flatten(x, 1)), inplace=True)
        return self.fc2(self.dropout(x))


class GoogLeNet(nn.Module):
    """GoogLeNet with torchvision's module names (``conv1`` ... ``inception5b``, ``fc``).

    In training mode with ``aux_logits=True`` the forward returns :class:`GoogLeNetOutputs`
    (the paper weights the auxiliary losses by 0.3); otherwise the logits.
    Initialisation as torchvision: conv and Linear weights ``N(0, 0.01^2)`` truncated at +-2.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = False,
        transform_input: bool = False,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
    ) -> None:
        super().__init__()
        check_positive("googlenet", num_classes=num_classes, in_channels=in_channels)
        if transform_input and in_channels != 3:
            raise ConfigError(
                f"googlenet: transform_input needs in_channels=3 (ImageNet RGB), got {in_channels}"
            )
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.conv1 = BasicConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(*INCEPTION_CONFIG["inception3a"])
        self.inception3b = Inception(*INCEPTION_CONFIG["inception3b"])
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(*INCEPTION_CONFIG["inception4a"])
        self.inception4b = Inception(*INCEPTION_CONFIG["inception4b"])
        self.inception4c = Inception(*INCEPTION_CONFIG["inception4c"])
        self.inception4d = Inception(*INCEPTION_CONFIG["inception4d"])
        self.inception4e = Inception(*INCEPTION_CONFIG["inception4e"])
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(*INCEPTION_CONFIG["inception5a"])
        self.inception5b = Inception(*INCEPTION_CONFIG["inception5b"])
        # absent heads are None (not Identity) so that their keys are absent, as in torchvision
        self.aux1 = InceptionAux(512, num_classes, dropout_aux) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes, dropout_aux) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)
        init_truncated_normal_(self, std=0.01)

    def _transform_input(self, x: torch.Tensor) -> torch.Tensor:
        # ImageNet-normalised (mean/std) input -> the (x - 0.5) / 0.5 scaling of the original
        mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return x * (std / 0.5) + (mean - 0.5) / 0.5

    @checked_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        if self.transform_input:
            x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        heads = self.training and self.aux_logits
        aux1 = self.aux1(x) if heads and self.aux1 is not None else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if heads and self.aux2 is not None else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        if heads:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


@register_model(
    info=ModelInfo(
        family="googlenet",
        min_input=(15, 15),
        first_conv="conv1.conv",
        classifier="fc",
        cam_layer="inception5b",
        torchvision=True,
        published=Published(
            69.778, "ImageNet-1k", "torchvision 0.29 docs, GoogLeNet_Weights.IMAGENET1K_V1 acc@1"
        ),
    )
)
def googlenet(**kwargs: Any) -> GoogLeNet:
    """GoogLeNet (Inception v1), ``aux_logits=False`` by default. Keyword arguments:
    :class:`GoogLeNet`."""
    return GoogLeNet(**kwargs)
