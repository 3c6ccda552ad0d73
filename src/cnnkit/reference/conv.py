"""2-D convolution from scratch: forward by explicit loops or im2col + GEMM, backward by formula.

Convolution in deep learning is cross-correlation (002, 004):

    Y[n, o, i, j] = b[o] + sum_{c, a, b} W[o, c, a, b] X_pad[n, g(o) c, i s + a d, j s + b d]

where ``c`` runs over the ``C_in / groups`` channels of the group ``g(o)`` of output channel ``o``.
``conv2d`` dispatches to one of four methods that compute exactly this: ``loop`` and ``im2col``
here, ``fft`` (:mod:`cnnkit.reference.fft`) and ``winograd`` (:mod:`cnnkit.reference.winograd`).
``conv2d_backward`` gives the three gradients by the formulas of 000 section 3.1 and 002
"Backpropagation Through Convolution", not by autograd.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from cnnkit.errors import UnknownNameError
from cnnkit.reference._checks import require_float, require_shape
from cnnkit.reference._geometry import ConvGeometry, IntOrPair, conv_geometry

ConvMethod = Literal["loop", "im2col", "fft", "winograd"]
METHODS: tuple[str, ...] = ("loop", "im2col", "fft", "winograd")


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    method: ConvMethod = "loop",
) -> torch.Tensor:
    """Cross-correlation of ``x`` (N, C_in, H, W) with ``weight`` (C_out, C_in / groups, kH, kW).

    ``Y[n, o, i, j] = b[o] + sum_{c, a, b} W[o, c, a, b] X_pad[n, c, i s + a d, j s + b d]``
    (002), output size ``floor((n + 2p - d(k - 1) - 1) / s) + 1`` per axis. Same semantics as
    ``torch.nn.functional.conv2d`` (zero padding, int or per-axis ``(H, W)`` arguments).

    Args:
        method: ``loop`` (explicit loop over output positions, 004's corr2d generalised),
            ``im2col`` (unfold + one GEMM per group, 002), ``fft`` (pointwise products in the
            frequency domain) or ``winograd`` (F(2x2, 3x3); 3x3 kernels, stride 1, dilation 1).
    """
    require_float("conv2d", input=x, weight=weight, bias=bias)
    geometry = conv_geometry("conv2d", x, weight, stride, padding, dilation, groups)
    y = _method(method)(x, weight, geometry)
    if bias is not None:
        require_shape("conv2d", "bias", bias, (geometry.out_channels,))
        y = y + bias.view(1, -1, 1, 1)
    return y


Method = Callable[[torch.Tensor, torch.Tensor, ConvGeometry], torch.Tensor]


def _method(name: str) -> Method:
    """The implementation of ``name``; fft and winograd live in modules that import this one."""
    if name == "loop":
        return conv2d_loop
    if name == "im2col":
        return conv2d_im2col
    if name == "fft":
        from cnnkit.reference.fft import conv2d_fft

        return conv2d_fft
    if name == "winograd":
        from cnnkit.reference.winograd import conv2d_winograd

        return conv2d_winograd
    raise UnknownNameError("conv2d method", str(name), METHODS)


def pad_zeros(x: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
    """``x`` with ``padding = (p_h, p_w)`` zeros on both sides of H and W (PyTorch's padding)."""
    if padding == (0, 0):
        return x
    return F.pad(x, (padding[1], padding[1], padding[0], padding[0]))


def windows(x_padded: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
    """A view (N, C, H_out, W_out, kH, kW) of every receptive window of a padded input.

    ``windows[n, c, i, j, a, b] = X_pad[n, c, i s + a d, j s + b d]``: ``unfold`` slides a
    window of the dilated span ``d(k - 1) + 1`` with step ``s``; ``[::d]`` keeps the taps.
    No data is copied.
    """
    (span_h, span_w), (stride_h, stride_w) = geometry.effective_kernel, geometry.stride
    (dilation_h, dilation_w) = geometry.dilation
    view = x_padded.unfold(2, span_h, stride_h).unfold(3, span_w, stride_w)
    return view[..., ::dilation_h, ::dilation_w]


def conv2d_loop(x: torch.Tensor, weight: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
    """004's ``corr2d`` generalised: one multiply-and-sum per output position ``(i, j)``.

    For each output position the window ``X_pad[:, :, i s : i s + d(k-1) + 1 : d, ...]`` is
    multiplied by every kernel of its group and summed over (channel, row, column): the seeds'
    ``(X[i:i+h, j:j+w] * K).sum()`` with batch, channels, groups, stride and dilation.
    """
    n, g = geometry.batch, geometry.groups
    out_h, out_w = geometry.output_size
    (kernel_h, kernel_w), (stride_h, stride_w) = geometry.kernel_size, geometry.stride
    (span_h, span_w), (dilation_h, dilation_w) = geometry.effective_kernel, geometry.dilation
    x_padded = pad_zeros(x, geometry.padding)
    # (groups, C_out/g, C_in/g, kH, kW): each output channel sees only its group's inputs.
    kernels = weight.reshape(g, -1, *weight.shape[1:])
    y = x.new_empty(n, g, kernels.shape[1], out_h, out_w)
    for i in range(out_h):
        for j in range(out_w):
            top, left = i * stride_h, j * stride_w
            window = x_padded[
                :, :, top : top + span_h : dilation_h, left : left + span_w : dilation_w
            ]
            # explicit sizes, not -1: an empty batch (n = 0) leaves -1 undetermined
            window = window.reshape(n, g, 1, geometry.in_channels // g, kernel_h, kernel_w)
            y[:, :, :, i, j] = (window * kernels).sum(dim=(-3, -2, -1))
    return y.reshape(geometry.output_shape)


def im2col(x: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
    """The patch matrix of 002: (N, C_in kH kW, H_out W_out), rows ordered (c, a, b).

    Equals ``torch.nn.functional.unfold``. Its size, ``N C_in kH kW H_out W_out`` elements, is
    002's "im2col memory bill" (``cnnkit.arith.memory.im2col_elements``): it is materialised here
    by the ``reshape`` of a non-contiguous view.
    """
    patches = windows(pad_zeros(x, geometry.padding), geometry)  # (N, C, Ho, Wo, kH, kW)
    n, c, out_h, out_w, kernel_h, kernel_w = patches.shape
    return patches.permute(0, 1, 4, 5, 2, 3).reshape(n, c * kernel_h * kernel_w, out_h * out_w)


def conv2d_im2col(x: torch.Tensor, weight: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
    """``Y = W_mat @ unfold(X)`` (002 "Convolution as Matrix Multiplication"), one GEMM per group.

    ``W_mat`` is (C_out / g, C_in / g kH kW) per group; ``unfold(X)`` is :func:`im2col`.
    """
    n, g = geometry.batch, geometry.groups
    (kernel_h, kernel_w), (out_h, out_w) = geometry.kernel_size, geometry.output_size
    group_rows = geometry.in_channels // g * kernel_h * kernel_w  # not -1: n may be 0
    columns = im2col(x, geometry).reshape(n, g, group_rows, out_h * out_w)
    kernels = weight.reshape(g, geometry.out_channels // g, -1)
    return torch.matmul(kernels, columns).reshape(geometry.output_shape)


def conv2d_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of ``conv2d`` given ``G = dL/dY``, by the formulas of 000 3.1 and 002.

    - ``dL/db[o] = sum_{n, i, j} G[n, o, i, j]``
    - ``dL/dW[o, c, a, b] = sum_{n, i, j} G[n, o, i, j] X_pad[n, c, i s + a d, j s + b d]``: a
      correlation of the input with the output gradient.
    - ``dL/dX = G * rot180(W)``: the transposed convolution of ``G`` with the same weight
      (insert ``s - 1`` zeros between the rows and columns of ``G``, pad, correlate with the
      kernel rotated by 180 degrees and its in/out channels swapped), cropped to the input size.
      Input rows that no window reached (when ``(H + 2p - d(k - 1) - 1) mod s > 0``) get zero.

    Returns:
        ``(grad_x, grad_weight, grad_bias)`` with the shapes of ``x``, ``weight`` and ``(C_out,)``.
    """
    require_float("conv2d_backward", grad_out=grad_out, input=x, weight=weight)
    geometry = conv_geometry("conv2d_backward", x, weight, stride, padding, dilation, groups)
    require_shape("conv2d_backward", "grad_out", grad_out, geometry.output_shape)
    grad_bias = grad_out.sum(dim=(0, 2, 3))
    grad_weight = weight_gradient(x, grad_out, geometry)
    # Imported here: transposed.py builds on conv2d, and conv2d's backward is a transposed conv.
    from cnnkit.reference.transposed import conv_transpose2d

    uncovered = tuple(
        (size + 2 * p - span) % s
        for size, p, span, s in zip(
            geometry.input_size,
            geometry.padding,
            geometry.effective_kernel,
            geometry.stride,
            strict=True,
        )
    )
    grad_x = conv_transpose2d(
        grad_out, weight, None, geometry.stride, geometry.padding, uncovered, geometry.dilation,
        groups, method="im2col",
    )  # fmt: skip
    return grad_x, grad_weight, grad_bias


def weight_gradient(
    x: torch.Tensor, grad_out: torch.Tensor, geometry: ConvGeometry
) -> torch.Tensor:
    """``dL/dW[o, c, a, b] = sum_{n, i, j} G[n, o, i, j] X_pad[n, c, i s + a d, j s + b d]`` (002).

    One loop over the kernel taps ``(a, b)``; each tap is the inner product of the output
    gradient with the input seen by that tap. The spatial size of ``grad_out`` sets how many
    positions ``(i, j)`` are summed (a transposed convolution reuses this with its roles swapped).
    """
    n, g = x.shape[0], geometry.groups
    out_h, out_w = grad_out.shape[-2:]
    (stride_h, stride_w), (dilation_h, dilation_w) = geometry.stride, geometry.dilation
    x_padded = pad_zeros(x, geometry.padding)
    # explicit channel counts, not -1: an empty batch (n = 0) leaves -1 undetermined
    x_groups = x_padded.reshape(n, g, x.shape[1] // g, *x_padded.shape[-2:])
    grad_groups = grad_out.reshape(n, g, grad_out.shape[1] // g, out_h, out_w)
    kernel_h, kernel_w = geometry.kernel_size
    grad_weight = x.new_empty(g, grad_groups.shape[2], x_groups.shape[2], kernel_h, kernel_w)
    for a in range(kernel_h):
        for b in range(kernel_w):
            top, left = a * dilation_h, b * dilation_w
            seen = x_groups[
                ..., top : top + stride_h * (out_h - 1) + 1 : stride_h,
                left : left + stride_w * (out_w - 1) + 1 : stride_w,
            ]  # fmt: skip
            grad_weight[..., a, b] = torch.einsum("ngohw,ngchw->goc", grad_groups, seen)
    return grad_weight.reshape(-1, x_groups.shape[2], kernel_h, kernel_w)
