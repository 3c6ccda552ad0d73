"""Small models for the analysis and CLI tests (importable as ``tests.analysis.models:NAME``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """A ResNet basic block with an inplace residual add (``out += identity``)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU()
        )
        self.layer1 = BasicBlock(8, 8)
        self.layer2 = BasicBlock(8, 16, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def tiny_resnet() -> TinyResNet:
    return TinyResNet()


class FunctionalNet(nn.Module):
    """Functional ops in a non-leaf forward: F.conv2d with its own weight, a scale parameter,
    torch.cat, F.relu, an inplace op, a view written in place, a Python loop that calls the
    same module three times, and two Linear layers that share (tie) one weight."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 3, 3, 3))
        self.scale = nn.Parameter(torch.ones(1, 4, 1, 1))
        self.block = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(8, 8)
        self.tied = nn.Linear(8, 8)
        self.tied.weight = self.head.weight
        self.unused = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight, padding=1)
        x = x * self.scale
        for _ in range(3):
            x = x + self.block(x)
        x = F.relu(x)
        x[:, :2] *= 2
        x = torch.cat([x, x.relu_()], dim=1)
        x = x.mean(dim=(2, 3))
        return self.tied(self.head(x))


def functional_net() -> FunctionalNet:
    return FunctionalNet()


class DataDependent(nn.Module):
    """A branch on the input's values: cannot run on the meta device."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.conv(x)
        return self.conv(-x)


def data_dependent() -> DataDependent:
    return DataDependent()


class ImageAndTokens(nn.Module):
    """Two inputs: an image and token ids (an integer dtype)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.embed = nn.Embedding(100, 8)

    def forward(self, image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.conv(image).mean((2, 3)) + self.embed(tokens).mean(1)


def image_and_tokens() -> ImageAndTokens:
    return ImageAndTokens()


def not_a_module() -> int:
    return 3
