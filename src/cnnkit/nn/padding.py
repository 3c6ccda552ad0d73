"""Padding that a symmetric ``padding=p`` cannot express: TF-style 'same' and causal (002).

Seed 002, "Padding Semantics": a stride-1 conv keeps the size with ``p = d(k - 1) / 2``; when
``d(k - 1)`` is odd no symmetric padding does, and the padding must be asymmetric (explicit
``F.pad`` before the conv). "same" only describes the output shape, not the information flow: a
sequence model needs *causal* padding, on the left only, so that ``y_t`` depends on ``x_{<=t}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.arith.conv import same_padding
from cnnkit.errors import ConfigError

IntOrPair = int | tuple[int, int]

# nn.Conv2d's padding_mode names -> F.pad's mode names
_PAD_MODES = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "replicate",
    "circular": "circular",
}


class Conv2dSame(nn.Conv2d):
    """A ``Conv2d`` whose output is ``ceil(H / s) x ceil(W / s)`` for every input size.

    The padding is computed per input in ``forward`` (:func:`cnnkit.arith.conv.same_padding`:
    total ``P = max((ceil(n / s) - 1) s + d(k - 1) + 1 - n, 0)``, ``P // 2`` before) and applied
    with ``F.pad``, the odd pixel going to the bottom/right as in TensorFlow. Parameters and
    state_dict are those of ``nn.Conv2d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        dilation: IntOrPair = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
    ) -> None:
        if padding_mode not in _PAD_MODES:
            raise ConfigError(
                f"Conv2dSame: padding_mode must be one of {sorted(_PAD_MODES)}, "
                f"got {padding_mode!r}"
            )
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=0,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.same_padding_mode = padding_mode

    def padding_for(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(left, right, top, bottom)`` padding for an input of ``height x width``."""
        (top, bottom), (left, right) = same_padding(
            (height, width), self.kernel_size, self.stride, self.dilation
        )
        return left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.padding_for(x.shape[-2], x.shape[-1])
        if any(pad):
            x = F.pad(x, pad, mode=_PAD_MODES[self.same_padding_mode])
        return self._conv_forward(x, self.weight, self.bias)


class CausalConv1d(nn.Conv1d):
    """A ``Conv1d`` padded on the left only: ``y_t = sum_a w_a x_{t - a d}`` (002, causal CNN).

    Left padding ``d(k - 1)`` keeps the length at stride 1 and makes each output depend only on
    the present and past inputs; padding both sides would leak the future.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        for name, value in (("kernel_size", kernel_size), ("dilation", dilation)):
            if isinstance(value, Sequence) or value < 1:
                raise ConfigError(f"CausalConv1d: {name} must be an int >= 1, got {value!r}")
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=0,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.left_padding = dilation * (kernel_size - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(F.pad(x, (self.left_padding, 0)), self.weight, self.bias)
