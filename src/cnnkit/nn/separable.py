"""Depthwise-separable convolution with a depth multiplier (MobileNet; seeds 001, 002).

Seed 002: a depthwise conv filters each input channel alone (``groups = C_in``); with depth
multiplier ``m`` it makes ``m`` maps per channel (``C_out = m C_in``). A 1x1 pointwise conv then
mixes channels. Parameters ``C_in m K_h K_w + m C_in C_out`` instead of ``C_out C_in K_h K_w``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from cnnkit.errors import ConfigError


class DepthwiseSeparableConv(nn.Module):
    """``depthwise`` (k x k, groups=C_in, C_in -> m C_in) -> norm -> act -> ``pointwise`` -> ...

    Args:
        in_channels, out_channels: channels in and out.
        kernel_size, stride, dilation: of the depthwise conv.
        padding: of the depthwise conv; ``None`` gives ``d (k - 1) // 2`` (size kept at stride 1).
        depth_multiplier: depthwise maps per input channel (``m``).
        bias: conv biases (default ``False``: a norm layer follows each conv).
        norm_layer: e.g. ``nn.BatchNorm2d``, applied after each conv; ``None`` for none.
        activation_layer: e.g. ``nn.ReLU``, applied after each norm; ``None`` for none.

    Parameters (no norm): ``C_in m k^2 (+ C_in m) + m C_in C_out (+ C_out)`` (002).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        depth_multiplier: int = 1,
        bias: bool = False,
        norm_layer: Callable[[int], nn.Module] | None = nn.BatchNorm2d,
        activation_layer: Callable[[], nn.Module] | None = nn.ReLU,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("kernel_size", kernel_size),
            ("depth_multiplier", depth_multiplier),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"DepthwiseSeparableConv: {name} must be an integer >= 1, got {value!r}"
                )
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        mid = in_channels * depth_multiplier
        self.depthwise = nn.Conv2d(
            in_channels,
            mid,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=in_channels,
            bias=bias,
        )
        self.depthwise_norm = norm_layer(mid) if norm_layer else nn.Identity()
        self.depthwise_act = activation_layer() if activation_layer else nn.Identity()
        self.pointwise = nn.Conv2d(mid, out_channels, 1, bias=bias)
        self.pointwise_norm = norm_layer(out_channels) if norm_layer else nn.Identity()
        self.pointwise_act = activation_layer() if activation_layer else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.depthwise_act(self.depthwise_norm(self.depthwise(x)))
        return self.pointwise_act(self.pointwise_norm(self.pointwise(x)))
