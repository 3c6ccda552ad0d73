"""Deliberately broken models for the doctor's rules, each with a close twin that is fine.

``CASES``: rule id -> (broken factory, twin factory, input shape, expected ``where``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from cnnkit.models import create_model


def conv_bn(bias: bool) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=bias), nn.BatchNorm2d(8), nn.ReLU())


def conv_conv(activation: bool) -> nn.Module:
    middle = [nn.ReLU()] if activation else []
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), *middle, nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
    )


def softmax_head(softmax: bool) -> nn.Module:
    tail = [nn.Softmax(dim=1)] if softmax else []
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10), *tail)


class InplaceBlock(nn.Module):
    """``relu_(x)`` then ``conv(out) + x``: x was rewritten (the bug); the twin rewrites only
    the conv's own output, as torchvision's blocks do."""

    def __init__(self, bug: bool) -> None:
        super().__init__()
        self.bug = bug
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(self.relu(x)) if self.bug else self.relu(self.conv(x))
        return out + x


def inplace_model(bug: bool) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), InplaceBlock(bug))


def small_rf() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))


def big_kernel_late() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 7, padding=3)
    )


def unpadded_big_kernel() -> nn.Module:
    """At 8x8 the 7x7 conv gets a 3x3 map: its output would be empty (an error)."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 8, 7))


def transposed(kernel: int) -> nn.Module:
    return nn.Sequential(nn.ConvTranspose2d(3, 8, kernel, stride=2))


def same_conv(kernel: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, kernel, padding="same"))


class CausalPadded(nn.Module):
    """A causal conv done right: pad k-1 on the left only."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (2, 0)))


class Sequence(nn.Module):
    def __init__(self, right: bool) -> None:
        super().__init__()
        self.causal = CausalPadded() if right else nn.Conv1d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.causal(x)


class ViewHead(nn.Module):
    def __init__(self, use_view: bool) -> None:
        super().__init__()
        self.use_view = use_view
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = x.view(x.size(0), -1) if self.use_view else torch.flatten(x, 1)
        return self.fc(x)


class TwoPaths(nn.Module):
    """A residual add whose shortcut has 1 channel (broadcast) or 8 (the twin)."""

    def __init__(self, shortcut_channels: int) -> None:
        super().__init__()
        self.main = nn.Conv2d(3, 8, 3, padding=1)
        self.shortcut = nn.Conv2d(3, shortcut_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.shortcut(x)


def depthwise(pointwise_between: bool) -> nn.Module:
    between = nn.Conv2d(8, 8, 1) if pointwise_between else nn.Identity()
    return nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.ReLU(),
        between,
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 1),
    )


def flatten_head(adaptive: bool) -> nn.Module:
    pool = [nn.AdaptiveAvgPool2d(2)] if adaptive else []
    features = 8 * 2 * 2 if adaptive else 8 * 8 * 8
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), *pool, nn.Flatten(), nn.Linear(features, 10)
    )


def dropout_model(before_bn: bool) -> nn.Module:
    if before_bn:
        layers = [nn.Dropout(0.5), nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()]
    else:
        layers = [nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.5)]
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), *layers)


def kernel_model(kernel: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 7, padding=3),  # a 7x7 stem on the input is exempt
        nn.ReLU(),
        nn.Conv2d(16, 16, kernel, padding=kernel // 2),
        nn.ReLU(),
    )


def channels(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Conv2d(width, 16, 3))


class StickyBatchNorm(nn.BatchNorm2d):
    """A BatchNorm whose train() override keeps it in training mode: eval() does not reach it."""

    def train(self, mode: bool = True) -> StickyBatchNorm:
        return super().train(True)


def eval_model(sticky: bool) -> nn.Module:
    norm = StickyBatchNorm(8) if sticky else nn.BatchNorm2d(8)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), norm, nn.ReLU())


class AlwaysDropout(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, 0.5, training=True)


# rule -> (broken, twin, input shape, where)
CASES: dict[str, tuple[Callable[[], nn.Module], Callable[[], nn.Module], tuple[int, ...], str]] = {
    "conv-bias-before-bn": (lambda: conv_bn(True), lambda: conv_bn(False), (3, 8, 8), "0"),
    "missing-nonlinearity": (
        lambda: conv_conv(False),
        lambda: conv_conv(True),
        (3, 8, 8),
        "1",
    ),
    "softmax-before-loss": (
        lambda: softmax_head(True),
        lambda: softmax_head(False),
        (3, 8, 8),
        "2",
    ),
    "inplace-overwrites-input": (
        lambda: inplace_model(True),
        lambda: inplace_model(False),
        (3, 8, 8),
        "1.relu",
    ),
    "early-downsampling": (
        lambda: create_model("resnet18", in_channels=1),
        lambda: create_model("resnet18", in_channels=1, small_input=True),
        (1, 28, 28),
        "maxpool",
    ),
    "kernel-exceeds-input": (big_kernel_late, big_kernel_late, (3, 8, 8), "2"),
    "checkerboard-transposed-conv": (
        lambda: transposed(3),
        lambda: transposed(4),
        (3, 8, 8),
        "0",
    ),
    "asymmetric-padding": (lambda: same_conv(4), lambda: same_conv(3), (3, 8, 8), "0"),
    "causal-conv-symmetric-padding": (
        lambda: Sequence(right=False),
        lambda: Sequence(right=True),
        (4, 16),
        "causal",
    ),
    "view-needs-contiguous": (
        lambda: ViewHead(True),
        lambda: ViewHead(False),
        (3, 8, 8),
        "view",
    ),
    "residual-shape-broadcast": (lambda: TwoPaths(1), lambda: TwoPaths(8), (3, 8, 8), "add"),
    "depthwise-without-pointwise": (
        lambda: depthwise(False),
        lambda: depthwise(True),
        (8, 8, 8),
        "0",
    ),
    "fixed-input-size": (
        lambda: flatten_head(False),
        lambda: flatten_head(True),
        (3, 8, 8),
        "3",
    ),
    "dropout-before-bn": (
        lambda: dropout_model(True),
        lambda: dropout_model(False),
        (3, 8, 8),
        "4",
    ),
    "large-kernel-stack": (lambda: kernel_model(5), lambda: kernel_model(3), (3, 8, 8), "2"),
    "channels-not-multiple-of-8": (lambda: channels(20), lambda: channels(24), (3, 8, 8), "0"),
    "eval-batch-dependence": (
        lambda: eval_model(True),
        lambda: eval_model(False),
        (3, 8, 8),
        "1",
    ),
}
# The twin input for rules whose defect is the input size, not the model.
TWIN_INPUT = {"kernel-exceeds-input": (3, 16, 16)}


def grouped(channels: int = 8, groups: int = 4) -> nn.Module:
    """A grouped conv whose channels the settings may not divide (``--model-kwargs``)."""
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, groups=groups), nn.ReLU())
