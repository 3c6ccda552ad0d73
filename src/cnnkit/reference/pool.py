"""Max and average pooling from scratch, each forward beside its backward (000 3.2, 002, 004).

Windows are the same strided views as the convolution's (:func:`windows`): pooling is a
correlation whose "kernel" is a max or a mean. Semantics follow PyTorch's ``max_pool2d`` and
``avg_pool2d`` (padding with -inf for max and zeros for average, ``ceil_mode``, and
``count_include_pad=True`` by default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnkit.reference._checks import require_float, require_shape
from cnnkit.reference._geometry import IntOrPair, PoolGeometry, pool_geometry


def _pad_to_span(x: torch.Tensor, geometry: PoolGeometry, value: float) -> torch.Tensor:
    """Pad by ``p`` on the top/left and up to the windows' reach on the bottom/right."""
    (pad_h, pad_w), (span_h, span_w) = geometry.padding, geometry.span
    bottom = span_h - pad_h - x.shape[-2]
    right = span_w - pad_w - x.shape[-1]
    padded = F.pad(x, (pad_w, max(right, 0), pad_h, max(bottom, 0)), value=value)
    return padded[..., :span_h, :span_w]


def _windows(padded: torch.Tensor, geometry: PoolGeometry) -> torch.Tensor:
    """(N, C, H_out, W_out, kH, kW) view: ``[n, c, i, j, a, b] = X_pad[n, c, i s + a d, j s + b d]``
    (no copy)."""
    (span_h, span_w), (stride_h, stride_w) = geometry.effective_kernel, geometry.stride
    view = padded.unfold(2, span_h, stride_h).unfold(3, span_w, stride_w)
    return view[..., :: geometry.dilation[0], :: geometry.dilation[1]]


def _scatter_taps(
    grad_windows: torch.Tensor, geometry: PoolGeometry, like: torch.Tensor
) -> torch.Tensor:
    """Adjoint of :func:`_windows`: add each window's gradient back where its taps read from,
    then drop the padding. ``grad_windows`` is (N, C, H_out, W_out, kH, kW)."""
    (pad_h, pad_w), (span_h, span_w) = geometry.padding, geometry.span
    out_h, out_w = geometry.output_size
    (stride_h, stride_w), (dilation_h, dilation_w) = geometry.stride, geometry.dilation
    grad = like.new_zeros(*like.shape[:2], max(span_h, like.shape[-2] + 2 * pad_h),
                          max(span_w, like.shape[-1] + 2 * pad_w))  # fmt: skip
    for a in range(geometry.kernel_size[0]):
        for b in range(geometry.kernel_size[1]):
            top, left = a * dilation_h, b * dilation_w
            grad[
                ..., top : top + stride_h * (out_h - 1) + 1 : stride_h,
                left : left + stride_w * (out_w - 1) + 1 : stride_w,
            ] += grad_windows[..., a, b]  # fmt: skip
    height, width = like.shape[-2:]
    return grad[..., pad_h : pad_h + height, pad_w : pad_w + width]


def max_pool2d(
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> torch.Tensor:
    """``Y[n, c, i, j] = max_{a, b} X_pad[n, c, i s + a d, j s + b d]`` (002), padding -inf.

    ``stride`` defaults to ``kernel_size``; output size as ``cnnkit.arith.pool.pool_output_size``.
    """
    require_float("max_pool2d", input=x)
    geometry = pool_geometry("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    patches = _windows(_pad_to_span(x, geometry, float("-inf")), geometry)
    return patches.flatten(-2).amax(dim=-1)


def max_pool2d_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> torch.Tensor:
    """``dL/dX``: each output's gradient goes to its window's argmax, the rest get 0 (000 3.2).

    Ties go to the first maximum in row-major window order, as PyTorch's CPU kernel does;
    overlapping windows that share an argmax add their gradients. A dilated window that lies
    wholly in the padding outputs -inf and passes no gradient (PyTorch's CPU kernel sends it to
    an index outside the window).
    """
    require_float("max_pool2d_backward", grad_out=grad_out, input=x)
    geometry = pool_geometry("max_pool2d_backward", x, kernel_size, stride, padding, dilation,
                             ceil_mode)  # fmt: skip
    require_shape("max_pool2d_backward", "grad_out", grad_out,
                  (*x.shape[:2], *geometry.output_size))  # fmt: skip
    patches = _windows(_pad_to_span(x, geometry, float("-inf")), geometry).flatten(-2)
    first_max = patches.argmax(dim=-1, keepdim=True)  # torch.argmax returns the first maximum
    mask = torch.zeros_like(patches).scatter_(-1, first_max, 1.0)
    grad_windows = (mask * grad_out.unsqueeze(-1)).unflatten(-1, geometry.kernel_size)
    return _scatter_taps(grad_windows, geometry, x)


def _divisor(x: torch.Tensor, geometry: PoolGeometry, count_include_pad: bool) -> torch.Tensor:
    """Per-window element count: the window's overlap with the padded input (PyTorch's
    ``count_include_pad=True``) or with the input alone; a ``ceil_mode`` window hanging past
    the padding counts only what it overlaps. Shape (H_out, W_out)."""
    ones = x.new_ones(1, 1, *x.shape[-2:])
    if count_include_pad:
        ones = F.pad(ones, (geometry.padding[1],) * 2 + (geometry.padding[0],) * 2, value=1.0)
        region = PoolGeometry(geometry.kernel_size, geometry.stride, (0, 0), geometry.dilation,
                              (ones.shape[-2], ones.shape[-1]), geometry.output_size)  # fmt: skip
        counted = _windows(_pad_to_span(ones, region, 0.0), region)
    else:
        counted = _windows(_pad_to_span(ones, geometry, 0.0), geometry)
    return counted.sum(dim=(-2, -1))[0, 0]


def avg_pool2d(
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> torch.Tensor:
    """``Y[n, c, i, j] = (1 / |W_ij|) sum_{a, b} X_pad[n, c, i s + a, j s + b]`` (002).

    ``|W_ij|`` is the window size ``kH kW`` with PyTorch's default ``count_include_pad=True``
    (zero padding counts, a ``ceil_mode`` overhang does not).
    """
    require_float("avg_pool2d", input=x)
    geometry = pool_geometry("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode, "avg")
    patches = _windows(_pad_to_span(x, geometry, 0.0), geometry)
    return patches.sum(dim=(-2, -1)) / _divisor(x, geometry, count_include_pad)


def avg_pool2d_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> torch.Tensor:
    """``dL/dX``: each output's gradient is shared equally, ``G / |W_ij|``, by its window (000)."""
    require_float("avg_pool2d_backward", grad_out=grad_out, input=x)
    geometry = pool_geometry(
        "avg_pool2d_backward", x, kernel_size, stride, padding, 1, ceil_mode, "avg"
    )
    require_shape("avg_pool2d_backward", "grad_out", grad_out,
                  (*x.shape[:2], *geometry.output_size))  # fmt: skip
    share = grad_out / _divisor(x, geometry, count_include_pad)
    grad_windows = share[..., None, None].expand(*share.shape, *geometry.kernel_size)
    return _scatter_taps(grad_windows, geometry, x)
