"""The geometry of one convolution or pooling call: per-axis arguments and output size.

Every size comes from :mod:`cnnkit.arith` (the same formulas the analyzer uses), so an impossible
configuration raises the same :class:`~cnnkit.errors.ShapeError` / ``ConfigError`` from a
reference op as from ``cnnkit summary``. This module adds only what arith cannot see: the tensors'
shapes (channels, groups, rank).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from cnnkit.arith.conv import conv_output_size, conv_params, conv_transpose_output_size
from cnnkit.arith.pool import pool_output_size
from cnnkit.errors import ConfigError, ShapeError
from cnnkit.reference._checks import require_rank

Pair = tuple[int, int]
IntOrPair = int | Sequence[int]


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes and per-axis arguments of a 2-D (transposed) convolution, validated.

    ``in_channels``/``out_channels`` are those of the operation (for a transposed convolution,
    ``in_channels`` is ``weight.shape[0]``). ``input_size`` and ``output_size`` are ``(H, W)``.
    """

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    kernel_size: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    input_size: Pair
    output_size: Pair
    output_padding: Pair = (0, 0)

    @property
    def effective_kernel(self) -> Pair:
        """``d (k - 1) + 1`` per axis (002): the span of a dilated kernel."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation, strict=True))  # type: ignore[return-value]

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.out_channels, *self.output_size)


def pair(value: IntOrPair, name: str) -> Pair:
    """``value`` as ``(H, W)``: an int is used on both axes, a sequence must have two ints."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer or a pair of integers, got {value!r}")
    if isinstance(value, int):
        return (value, value)
    is_pair = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
    if is_pair and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return (int(value[0]), int(value[1]))
    raise ConfigError(f"{name} must be an integer or a pair of integers, got {value!r}")


@contextlib.contextmanager
def naming(op: str) -> Iterator[None]:
    """Prefix an arith error with the op that received the arguments; keep its class."""
    try:
        yield
    except (ConfigError, ShapeError) as exc:
        raise type(exc)(f"{op}: {exc}") from None


def _check_groups(op: str, in_channels: int, out_channels: int, groups: int) -> None:
    """The analyzer's group check (``arith.conv.conv_params`` refuses indivisible channels)."""
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise ConfigError(f"{op}: groups must be an integer, got {groups!r}")
    with naming(op):
        conv_params(in_channels, out_channels, 1, groups=groups)


def conv_geometry(
    op: str,
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: IntOrPair,
    padding: IntOrPair,
    dilation: IntOrPair,
    groups: int,
) -> ConvGeometry:
    """Validate a ``conv2d`` call (002's shapes): ``x`` (N, C_in, H, W), ``weight``
    (C_out, C_in / groups, k_h, k_w); output size ``floor((n + 2p - d(k - 1) - 1) / s) + 1``.
    """
    require_rank(op, "input", x, 4, "(N, C_in, H, W)")
    require_rank(op, "weight", weight, 4, "(C_out, C_in / groups, kH, kW)")
    batch, in_channels, height, width = x.shape
    out_channels, group_channels, kernel_h, kernel_w = weight.shape
    _check_groups(op, in_channels, out_channels, groups)
    if group_channels * groups != in_channels:
        raise ShapeError(
            f"{op}: weight {tuple(weight.shape)} expects {group_channels * groups} input channels "
            f"(C_in / groups = {group_channels}, groups = {groups}), input has {in_channels}"
        )
    kernel, strides = (kernel_h, kernel_w), pair(stride, "stride")
    paddings, dilations = pair(padding, "padding"), pair(dilation, "dilation")
    with naming(op):
        output = conv_output_size(
            (height, width), kernel, stride=strides, padding=paddings, dilation=dilations
        )
    return ConvGeometry(
        batch, in_channels, out_channels, groups, kernel, strides, paddings, dilations,
        (height, width), (output[0], output[1]),
    )  # fmt: skip


def conv_transpose_geometry(
    op: str,
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: IntOrPair,
    padding: IntOrPair,
    output_padding: IntOrPair,
    dilation: IntOrPair,
    groups: int,
) -> ConvGeometry:
    """Validate a ``conv_transpose2d`` call: ``x`` (N, C_in, H, W), ``weight``
    (C_in, C_out / groups, k_h, k_w); output size ``(n - 1)s - 2p + d(k - 1) + output_padding + 1``
    (002).
    """
    require_rank(op, "input", x, 4, "(N, C_in, H, W)")
    require_rank(op, "weight", weight, 4, "(C_in, C_out / groups, kH, kW)")
    batch, in_channels, height, width = x.shape
    weight_in, group_out, kernel_h, kernel_w = weight.shape
    if weight_in != in_channels:
        raise ShapeError(
            f"{op}: weight {tuple(weight.shape)} expects {weight_in} input channels, "
            f"input has {in_channels}"
        )
    _check_groups(op, in_channels, group_out * groups, groups)
    kernel, strides = (kernel_h, kernel_w), pair(stride, "stride")
    paddings, dilations = pair(padding, "padding"), pair(dilation, "dilation")
    extra = pair(output_padding, "output_padding")
    with naming(op):
        output = conv_transpose_output_size(
            (height, width), kernel, stride=strides, padding=paddings, output_padding=extra,
            dilation=dilations,
        )  # fmt: skip
    return ConvGeometry(
        batch, in_channels, group_out * groups, groups, kernel, strides, paddings, dilations,
        (height, width), (output[0], output[1]), extra,
    )  # fmt: skip


@dataclass(frozen=True)
class PoolGeometry:
    """Shapes and per-axis arguments of a 2-D pooling, validated."""

    kernel_size: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    input_size: Pair
    output_size: Pair

    @property
    def effective_kernel(self) -> Pair:
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation, strict=True))  # type: ignore[return-value]

    @property
    def span(self) -> Pair:
        """Input extent the windows reach, counted from the start of the padding.

        With ``ceil_mode`` the last window may pass the right padding; the ops pad that far.
        """
        return tuple(
            (o - 1) * s + k
            for o, s, k in zip(self.output_size, self.stride, self.effective_kernel, strict=True)
        )  # type: ignore[return-value]


def pool_geometry(
    op: str,
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None,
    padding: IntOrPair,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
    kind: Literal["max", "avg"] = "max",
) -> PoolGeometry:
    """Validate a pooling call; ``stride=None`` means ``stride = kernel_size`` (PyTorch).

    ``kind`` selects the analyzer's checks for max or average pooling.
    """
    require_rank(op, "input", x, 4, "(N, C, H, W)")
    kernel = pair(kernel_size, "kernel_size")
    strides = kernel if stride is None else pair(stride, "stride")
    paddings, dilations = pair(padding, "padding"), pair(dilation, "dilation")
    size = (x.shape[-2], x.shape[-1])
    with naming(op):
        output = pool_output_size(
            size, kernel, strides, paddings, dilations, ceil_mode=ceil_mode, kind=kind
        )
    return PoolGeometry(kernel, strides, paddings, dilations, size, (output[0], output[1]))
