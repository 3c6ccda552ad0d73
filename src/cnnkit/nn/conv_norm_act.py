"""Convolution -> normalisation -> activation as one block (C1 "ConvBNAct").

The block subclasses ``nn.Sequential`` so that its parameters are keyed ``0.weight`` (conv),
``1.weight`` / ``1.running_mean`` (norm), exactly like torchvision's ``Conv2dNormActivation``:
torchvision checkpoints of MobileNet, EfficientNet, RegNet and ConvNeXt depend on that layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from cnnkit.errors import ConfigError

IntOrPair = int | tuple[int, int]


def same_padding_for(kernel_size: IntOrPair, dilation: IntOrPair = 1) -> tuple[int, int]:
    """Per-axis padding ``(k - 1) // 2 * d`` that keeps the size of a stride-1 convolution.

    Output size (seed 000 / 002): ``o = floor((i + 2p - d(k - 1) - 1) / s) + 1``. With ``s = 1``
    and ``p = d(k - 1) / 2`` this is ``o = i`` for every odd ``k`` (and any dilation). For an even
    kernel no symmetric padding keeps the size; the formula then gives ``o = i - d`` (torchvision's
    convention, kept so that checkpoints and figures agree).
    """
    kernels = _pair(kernel_size, "kernel_size")
    dilations = _pair(dilation, "dilation")
    return tuple((k - 1) // 2 * d for k, d in zip(kernels, dilations, strict=True))  # type: ignore[return-value]  # one entry per kernel axis, the length the caller asked for


class ConvNormActivation(nn.Sequential):
    """``Conv2d`` -> ``norm_layer`` -> ``activation_layer`` (either may be ``None``).

    Args:
        in_channels, out_channels: channels of the convolution.
        kernel_size, stride, dilation, groups: as ``nn.Conv2d``.
        padding: ``None`` (default) computes 'same'-style padding ``(k - 1) // 2 * d`` per axis
            (:func:`same_padding_for`), so a stride-1 block with an odd kernel keeps the size.
        norm_layer: called as ``norm_layer(out_channels)``; ``None`` for no normalisation.
        activation_layer: called as ``activation_layer(inplace=inplace)``; ``None`` for none.
        inplace: passed to the activation (``None``: do not pass it, for activations without it).
        bias: conv bias; ``None`` means "only when there is no norm layer" (the norm's shift
            makes a conv bias redundant).

    Keys are ``0.*`` (conv), ``1.*`` (norm), like torchvision's ``Conv2dNormActivation``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair = 3,
        stride: IntOrPair = 1,
        padding: IntOrPair | str | None = None,
        groups: int = 1,
        norm_layer: Callable[..., nn.Module] | None = nn.BatchNorm2d,
        activation_layer: Callable[..., nn.Module] | None = nn.ReLU,
        dilation: IntOrPair = 1,
        inplace: bool | None = True,
        bias: bool | None = None,
    ) -> None:
        _check_channels(in_channels, out_channels, groups)
        if padding is None:
            padding = same_padding_for(kernel_size, dilation)
        if bias is None:
            bias = norm_layer is None
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding,
                dilation=dilation,
                groups=groups,
                bias=bias,
            )
        ]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            options = {} if inplace is None else {"inplace": inplace}
            layers.append(activation_layer(**options))
        super().__init__(*layers)
        self.out_channels = out_channels


def _pair(value: IntOrPair | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ConfigError(
            f"ConvNormActivation: {name} must be an int >= 1 or a pair, got {value!r}"
        )
    return pair


def _check_channels(in_channels: int, out_channels: int, groups: int) -> None:
    for name, value in (
        ("in_channels", in_channels),
        ("out_channels", out_channels),
        ("groups", groups),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"ConvNormActivation: {name} must be an integer >= 1, got {value!r}")
    if in_channels % groups or out_channels % groups:
        raise ConfigError(
            f"ConvNormActivation: groups={groups} must divide in_channels={in_channels} "
            f"and out_channels={out_channels}"
        )
