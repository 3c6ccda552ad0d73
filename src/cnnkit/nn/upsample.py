"""Learnable upsamplers that avoid the checkerboard of a strided transposed conv (002).

Seed 002, "Upsampling and Transposed Convolution": a transposed conv whose kernel is not a
multiple of its stride covers output pixels unevenly (1, 2, 1, 2, ...), which shows as a
checkerboard. Two remedies from the seed: resize then convolve, or a sub-pixel convolution
(convolve to ``r^2 C`` channels, then pixel shuffle ``[B, C r^2, H, W] -> [B, C, rH, rW]``).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.errors import ConfigError


def _check(name: str, **values: int) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}: {key} must be an integer >= 1, got {value!r}")


class PixelShuffleUpsample(nn.Module):
    """Sub-pixel upsampling: ``conv`` to ``out_channels * r^2`` channels, then ``PixelShuffle(r)``.

    With ``icnr=True`` (Aitken et al., 2017, "Checkerboard artifact free sub-pixel convolution")
    the conv starts as ``r^2`` copies of one kernel per output channel, so at initialisation the
    block equals "conv, then nearest-neighbour upsampling": every ``r x r`` output cell is
    constant and there is no checkerboard to unlearn.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale_factor: int = 2,
        kernel_size: int = 3,
        icnr: bool = True,
    ) -> None:
        super().__init__()
        _check("PixelShuffleUpsample", in_channels=in_channels, out_channels=out_channels)
        _check("PixelShuffleUpsample", scale_factor=scale_factor, kernel_size=kernel_size)
        if kernel_size % 2 == 0:
            raise ConfigError(f"PixelShuffleUpsample: kernel_size must be odd, got {kernel_size}")
        self.scale_factor = scale_factor
        self.conv = nn.Conv2d(
            in_channels, out_channels * scale_factor**2, kernel_size, padding=kernel_size // 2
        )
        self.shuffle = nn.PixelShuffle(scale_factor)
        if icnr:
            self.reset_icnr()

    @torch.no_grad()
    def reset_icnr(self) -> None:
        """ICNR: each output channel's ``r^2`` sub-pixel kernels start equal (Kaiming fan_in)."""
        r2 = self.scale_factor**2
        out_channels = self.conv.out_channels // r2
        base = torch.empty(out_channels, *self.conv.weight.shape[1:])
        nn.init.kaiming_normal_(base, nonlinearity="relu")
        # PixelShuffle reads channel c * r^2 + k as sub-pixel k of output channel c
        self.conv.weight.copy_(base.repeat_interleave(r2, dim=0))
        if self.conv.bias is not None:
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


class ResizeConvUpsample(nn.Module):
    """Resize (``nearest`` or ``bilinear``) by ``scale_factor``, then a same-size ``conv``.

    Every output pixel is produced the same way, so no uneven overlap (002's stable choice).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale_factor: int = 2,
        kernel_size: int = 3,
        mode: str = "nearest",
    ) -> None:
        super().__init__()
        _check("ResizeConvUpsample", in_channels=in_channels, out_channels=out_channels)
        _check("ResizeConvUpsample", scale_factor=scale_factor, kernel_size=kernel_size)
        if kernel_size % 2 == 0:
            raise ConfigError(f"ResizeConvUpsample: kernel_size must be odd, got {kernel_size}")
        if mode not in ("nearest", "bilinear"):
            raise ConfigError(
                f"ResizeConvUpsample: mode must be 'nearest' or 'bilinear', got {mode!r}"
            )
        align = False if mode == "bilinear" else None
        self.resize = nn.Upsample(scale_factor=scale_factor, mode=mode, align_corners=align)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.resize(x))
