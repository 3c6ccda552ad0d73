"""Hypothesis strategies for random convolution and pooling configurations (tiny shapes)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st


@dataclass(frozen=True)
class ConvCase:
    batch: int
    in_channels: int
    out_channels: int
    groups: int
    size: tuple[int, int]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    bias: bool

    def tensors(self, dtype=torch.float64, seed=0):
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(self.batch, self.in_channels, *self.size, generator=generator, dtype=dtype)
        weight = torch.randn(
            self.out_channels, self.in_channels // self.groups, *self.kernel_size,
            generator=generator, dtype=dtype,
        )  # fmt: skip
        bias = (
            torch.randn(self.out_channels, generator=generator, dtype=dtype) if self.bias else None
        )
        return x, weight, bias

    @property
    def arguments(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)  # fmt: skip


def _axis(draw, kernel_max: int, stride_max: int, dilation_max: int, padding_max: int):
    """(size, kernel, stride, padding, dilation) on one axis with a non-empty output."""
    kernel = draw(st.integers(1, kernel_max))
    stride = draw(st.integers(1, stride_max))
    dilation = draw(st.integers(1, dilation_max))
    padding = draw(st.integers(0, padding_max))
    span = dilation * (kernel - 1) + 1
    smallest = max(1, span - 2 * padding)
    size = draw(st.integers(smallest, smallest + 6))
    return size, kernel, stride, padding, dilation


@st.composite
def conv_cases(draw, kernel_max=4, stride_max=3, dilation_max=3, padding_max=3, square3=False):
    """Random valid ``conv2d`` configurations; ``square3`` gives Winograd's 3x3, stride 1."""
    groups = draw(st.integers(1, 3))
    in_channels = groups * draw(st.integers(1, 3))
    out_channels = groups * draw(st.integers(1, 3))
    axes = []
    for _ in range(2):
        if square3:
            padding = draw(st.integers(0, 3))
            size = draw(st.integers(max(1, 3 - 2 * padding), 3 - 2 * padding + 7))
            axes.append((size, 3, 1, padding, 1))
        else:
            axes.append(_axis(draw, kernel_max, stride_max, dilation_max, padding_max))
    (h, kh, sh, ph, dh), (w, kw, sw, pw, dw) = axes
    return ConvCase(
        batch=draw(st.integers(1, 2)), in_channels=in_channels, out_channels=out_channels,
        groups=groups, size=(h, w), kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw),
        dilation=(dh, dw), bias=draw(st.booleans()),
    )  # fmt: skip


@dataclass(frozen=True)
class PoolCase:
    shape: tuple[int, int, int, int]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    ceil_mode: bool


@st.composite
def pool_cases(draw, dilation_max=2):
    """Random valid pooling configurations (padding at most half the kernel, as PyTorch)."""
    axes = []
    for _ in range(2):
        kernel = draw(st.integers(1, 4))
        stride = draw(st.integers(1, 3))
        padding = draw(st.integers(0, kernel // 2))
        dilation = draw(st.integers(1, dilation_max))
        span = dilation * (kernel - 1) + 1
        smallest = max(1, span - 2 * padding)
        axes.append((draw(st.integers(smallest, smallest + 6)), kernel, stride, padding, dilation))
    (h, kh, sh, ph, dh), (w, kw, sw, pw, dw) = axes
    return PoolCase(
        shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w), kernel_size=(kh, kw),
        stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), ceil_mode=draw(st.booleans()),
    )  # fmt: skip
