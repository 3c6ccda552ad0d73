"""Transposed 2-D convolution from scratch, forward beside backward (002, B4).

002: "transposed convolution is not a deconvolution but the transpose of the linear map of an
ordinary convolution"; with stride ``s > 1`` it "inserts ``s - 1`` zeros between input
positions, then runs an ordinary convolution". That is how the forward is computed here:

    Y = corr(pad(zero_insert(X, s), d(k - 1) - p), rot180(W)^T)   (dilation d, stride 1)

so ``conv_transpose2d`` is exactly the input gradient of ``conv2d`` (and vice versa).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnkit.reference._checks import require_float, require_shape
from cnnkit.reference._geometry import ConvGeometry, IntOrPair, conv_transpose_geometry
from cnnkit.reference.conv import ConvMethod, conv2d, weight_gradient


def conv_transpose2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    method: ConvMethod = "im2col",
) -> torch.Tensor:
    """Transposed convolution of ``x`` (N, C_in, H, W) with ``weight`` (C_in, C_out / g, kH, kW).

    ``Y[n, o, i s + a d - p, j s + b d - p] += X[n, c, i, j] W[c, o, a, b]`` (the adjoint of
    ``conv2d``), output size ``(n - 1)s - 2p + d(k - 1) + output_padding + 1`` (002). Computed
    as 002 describes it: insert ``s - 1`` zeros between input pixels, pad by ``d(k - 1) - p``
    (``output_padding`` more at the bottom/right), correlate with the kernel rotated by 180
    degrees and its channel axes swapped, using ``method`` of :func:`conv2d`.
    Same semantics as ``torch.nn.functional.conv_transpose2d``.
    """
    require_float("conv_transpose2d", input=x, weight=weight, bias=bias)
    geometry = conv_transpose_geometry(
        "conv_transpose2d", x, weight, stride, padding, output_padding, dilation, groups
    )
    spread = _spread(x, geometry)
    y = conv2d(
        spread, _rot180_transposed(weight, groups), None, 1, 0, geometry.dilation, groups, method
    )
    if bias is not None:
        require_shape("conv_transpose2d", "bias", bias, (geometry.out_channels,))
        y = y + bias.view(1, -1, 1, 1)
    return y


def conv_transpose2d_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of ``conv_transpose2d`` given ``G = dL/dY``: the roles of ``conv2d`` swapped.

    - ``dL/dX = conv2d(G, W)`` with the same stride, padding, dilation and groups: a transposed
      convolution's adjoint is the ordinary convolution.
    - ``dL/dW[c, o, a, b] = sum_{n, i, j} X[n, c, i, j] G_pad[n, o, i s + a d, j s + b d]``: the
      weight gradient of ``conv2d`` with input ``G`` and output gradient ``X``.
    - ``dL/db[o] = sum_{n, i, j} G[n, o, i, j]``.
    """
    require_float("conv_transpose2d_backward", grad_out=grad_out, input=x, weight=weight)
    geometry = conv_transpose_geometry(
        "conv_transpose2d_backward", x, weight, stride, padding, output_padding, dilation, groups
    )
    require_shape("conv_transpose2d_backward", "grad_out", grad_out, geometry.output_shape)
    height, width = geometry.input_size
    grad_x = conv2d(
        grad_out, weight, None, geometry.stride, geometry.padding, geometry.dilation, groups,
        method="im2col",
    )[..., :height, :width]  # fmt: skip
    # (an output_padding >= stride, allowed when dilation > stride, adds one unused row)
    grad_weight = weight_gradient(grad_out, x, geometry)
    return grad_x, grad_weight, grad_out.sum(dim=(0, 2, 3))


def zero_insert(x: torch.Tensor, stride: tuple[int, int]) -> torch.Tensor:
    """``x`` with ``s - 1`` zeros between neighbouring rows and columns: (H - 1)s + 1 rows."""
    n, c, height, width = x.shape
    stride_h, stride_w = stride
    spread = x.new_zeros(n, c, (height - 1) * stride_h + 1, (width - 1) * stride_w + 1)
    spread[..., ::stride_h, ::stride_w] = x
    return spread


def _spread(x: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
    """Zero-insert, pad every side by ``d(k - 1)`` (plus ``output_padding`` at the end), then
    crop ``p`` from every side: padding ``d(k - 1) - p``, which may be negative."""
    spread = zero_insert(x, geometry.stride)
    full_h, full_w = (
        d * (k - 1) for k, d in zip(geometry.kernel_size, geometry.dilation, strict=True)
    )
    extra_h, extra_w = geometry.output_padding
    spread = F.pad(spread, (full_w, full_w + extra_w, full_h, full_h + extra_h))
    crop_h, crop_w = geometry.padding
    return spread[..., crop_h : spread.shape[-2] - crop_h, crop_w : spread.shape[-1] - crop_w]


def _rot180_transposed(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """(C_in, C_out/g, kH, kW) -> (C_out, C_in/g, kH, kW), each kernel rotated by 180 degrees."""
    in_channels, group_out, kernel_h, kernel_w = weight.shape
    per_group = weight.reshape(groups, in_channels // groups, group_out, kernel_h, kernel_w)
    swapped = per_group.transpose(1, 2).reshape(groups * group_out, -1, kernel_h, kernel_w)
    return swapped.flip(-2, -1)
