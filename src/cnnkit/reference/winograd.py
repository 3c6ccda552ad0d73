"""Winograd's minimal filtering F(2x2, 3x3): 16 multiplies per 2x2 output tile instead of 36.

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016), eq. (8): for a
4x4 input tile ``d`` and a 3x3 kernel ``g`` the 2x2 output tile of their correlation is

    Y = A^T [ (G g G^T) . (B^T d B) ] A

with the constant matrices below. ``G g G^T`` is computed once per kernel, ``B^T d B`` once per
tile and channel, and their elementwise product, summed over input channels, is 16 GEMMs (one per
tile position): 16 multiplies per tile and (input, output) channel pair, where the direct method
needs 4 outputs x 9 taps = 36. The transforms use only additions (and halves in ``G``, once per
kernel), so they are written as sums here: a FLOP counter sees only the 16 GEMMs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cnnkit.arith.conv import conv_macs
from cnnkit.errors import UnsupportedError
from cnnkit.reference._geometry import ConvGeometry
from cnnkit.reference.conv import pad_zeros

# Lavin & Gray (2016), F(2x2, 3x3).
INPUT_TRANSFORM = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))  # B^T
KERNEL_TRANSFORM = ((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1))  # G
OUTPUT_TRANSFORM = ((1, 1, 1, 0), (0, 1, -1, -1))  # A^T

TILE_MULTIPLIES = 16  # (2 + 3 - 1)^2 elementwise products per tile and channel pair
DIRECT_MULTIPLIES = 36  # 2 x 2 outputs x 3 x 3 taps


@dataclass(frozen=True)
class MultiplyCount:
    """Multiplications of a 3x3 stride-1 convolution, direct vs Winograd F(2x2, 3x3).

    ``direct = N H_out W_out C_out (C_in / g) 9`` (the convolution's MACs);
    ``winograd = N ceil(H_out/2) ceil(W_out/2) C_out (C_in / g) 16`` (the elementwise stage;
    transforms are additions). ``ratio = direct / winograd``: 36/16 = 2.25 when H_out and W_out
    are even, less when the last tile row or column is only half used.
    """

    tiles: int
    direct: int
    winograd: int

    @property
    def ratio(self) -> float:
        return self.direct / self.winograd


def winograd_multiply_count(
    output_size: tuple[int, int],
    in_channels: int,
    out_channels: int,
    groups: int = 1,
    batch: int = 1,
) -> MultiplyCount:
    """Multiplies of a 3x3, stride-1 convolution with ``output_size = (H_out, W_out)``.

    Per 2x2 output tile and per (input, output) channel pair: 36 direct, 16 Winograd
    (Lavin & Gray 2016), a saving of 2.25x.
    """
    out_h, out_w = output_size
    tiles = batch * math.ceil(out_h / 2) * math.ceil(out_w / 2)
    direct = conv_macs(in_channels, out_channels, 3, (out_h, out_w), groups, batch)
    return MultiplyCount(
        tiles=tiles,
        direct=direct,
        winograd=tiles * out_channels * (in_channels // groups) * TILE_MULTIPLIES,
    )


def check_winograd(geometry: ConvGeometry) -> None:
    """UnsupportedError naming the parameter when F(2x2, 3x3) does not apply."""
    checks = (
        ("kernel_size", geometry.kernel_size, (3, 3)),
        ("stride", geometry.stride, (1, 1)),
        ("dilation", geometry.dilation, (1, 1)),
    )
    for name, value, needed in checks:
        if value != needed:
            raise UnsupportedError(
                f"conv2d(method='winograd') computes F(2x2, 3x3) only: {name} must be "
                f"{needed}, got {value}"
            )


def conv2d_winograd(x: torch.Tensor, weight: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
    """``conv2d`` by F(2x2, 3x3) tiles: ``Y = A^T [ sum_c (G g G^T) . (B^T d B) ] A``.

    The padded input is cut into 4x4 tiles with step 2 (zero-extended at the bottom/right so
    that tiles cover an odd output), and the output is cropped back to ``(H_out, W_out)``.
    """
    check_winograd(geometry)
    n, g = geometry.batch, geometry.groups
    out_h, out_w = geometry.output_size
    tiles_h, tiles_w = math.ceil(out_h / 2), math.ceil(out_w / 2)
    x_padded = pad_zeros(x, geometry.padding)
    x_padded = F.pad(
        x_padded,
        (0, 2 * tiles_w + 2 - x_padded.shape[-1], 0, 2 * tiles_h + 2 - x_padded.shape[-2]),
    )
    tiles = x_padded.unfold(2, 4, 2).unfold(3, 4, 2)  # (N, C_in, tiles_h, tiles_w, 4, 4)
    v = _sandwich(tiles, INPUT_TRANSFORM)  # B^T d B
    u = _sandwich(weight, KERNEL_TRANSFORM)  # G g G^T: (C_out, C_in/g, 4, 4)
    # One GEMM per tile position p: M_p (C_out/g x NT) = U_p (C_out/g x C_in/g) @ V_p (C_in/g x NT)
    group_in = geometry.in_channels // g  # not -1: an empty batch (n = 0) leaves it undetermined
    v = v.reshape(n, g, group_in, tiles_h * tiles_w, 16).permute(4, 1, 2, 0, 3)
    v = v.reshape(16, g, v.shape[2], n * tiles_h * tiles_w)
    u = u.reshape(g, -1, u.shape[1], 16).permute(3, 0, 1, 2)  # (16, g, C_out/g, C_in/g)
    m = torch.matmul(u, v)  # (16, g, C_out/g, N T)
    m = m.reshape(4, 4, geometry.out_channels, n, tiles_h, tiles_w).permute(3, 2, 4, 5, 0, 1)
    y = _sandwich(m, OUTPUT_TRANSFORM)  # A^T M A: (N, C_out, tiles_h, tiles_w, 2, 2)
    y = y.permute(0, 1, 2, 4, 3, 5).reshape(n, geometry.out_channels, 2 * tiles_h, 2 * tiles_w)
    return y[..., :out_h, :out_w]


def _sandwich(t: torch.Tensor, matrix: tuple[tuple[float, ...], ...]) -> torch.Tensor:
    """``matrix @ t @ matrix^T`` over the last two axes, as sums of signed rows and columns."""
    return _combine(_combine(t, matrix, -2), matrix, -1)


def _combine(t: torch.Tensor, matrix: tuple[tuple[float, ...], ...], dim: int) -> torch.Tensor:
    """``matrix @ t`` along ``dim``: each output slice is a signed sum of input slices.

    Coefficients are 0, +-1 (additions) or +-0.5 (the kernel transform, once per kernel).
    """
    parts = t.unbind(dim)
    rows = []
    for coefficients in matrix:
        total: torch.Tensor | None = None
        for coefficient, part in zip(coefficients, parts, strict=True):
            if coefficient == 0:
                continue
            term = part if coefficient == 1 else -part if coefficient == -1 else part * coefficient
            total = term if total is None else total + term
        if total is None:  # the Winograd matrices have no all-zero row
            raise ValueError("winograd: a transform row has no non-zero coefficient")
        rows.append(total)
    return torch.stack(rows, dim)
