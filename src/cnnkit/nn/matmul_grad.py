"""Weight gradients of small-map convolutions by one matrix product (a CPU training speed-up).

For a stride-1 conv with a k x k kernel and zero padding p, the weight gradient is

    dW[o, c, i, j] = sum over n, y, x of  dY[n, o, y, x] * X_pad[n, c, y + i, x + j]

that is ``dY^T (O x M) @ cols (M x k*k*C)`` with M = N*H_out*W_out and ``cols`` the im2col
patches. oneDNN's bf16 weight-gradient kernel is slow on small feature maps: on the AMX host of
docs/benchmarks.md it took 14.0 ms for airnet's 256-channel 3x3-map conv (batch 256) against
3.8 ms for the im2col product, while its forward took 1.7 ms
(``benchmarks/conv_weight_grad.py``); on maps of 13 x 13 and more the im2col copy costs more
than it saves. :func:`use_matmul_weight_grad` swaps such convs of a model
for :class:`MatmulGradConv2d`, which computes the forward and the input gradient as before
and only the weight gradient by the product; parameters and state-dict keys are unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

# Maps of at most this many positions (4 x 4) take the matmul path in bf16. Training steps on the
# AMX host, 2 threads, against oneDNN throughout: airnet 64-128-256 depth 3 (batch 256) 1.20x
# with 16, 1.16x with 36, 1.14x with 49; ResNet-18 small-input (batch 128) 1.11x, 1.14x, 1.11x;
# the narrow airnets 0.95-1.01x. Single convs lose from 13 x 13 on.
MAX_POSITIONS = 16


def im2col_weight_grad(
    x: torch.Tensor, grad_out: torch.Tensor, kernel: tuple[int, int], padding: tuple[int, int]
) -> torch.Tensor:
    """dW of a stride-1, dilation-1, ungrouped conv: ``dY^T @ im2col(X)``, shaped (O, C, kh, kw).

    ``x`` is (N, C, H, W), ``grad_out`` (N, O, H_out, W_out), both in the compute dtype; the
    product accumulates in float32 inside the matmul kernel and is returned in that dtype.
    """
    kh, kw = kernel
    n, channels = x.shape[:2]
    out_h, out_w = grad_out.shape[-2:]
    # (N, H, W, C) views are contiguous for channels_last tensors, so no copy before the pad
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, padding[1], padding[1], padding[0], padding[0]))
    cols = torch.stack(
        [padded[:, i : i + out_h, j : j + out_w, :] for i in range(kh) for j in range(kw)], dim=3
    ).reshape(n * out_h * out_w, kh * kw * channels)
    grads = grad_out.permute(1, 0, 2, 3).reshape(grad_out.shape[1], -1)  # (O, M), contiguous
    return (grads @ cols).view(-1, kh, kw, channels).permute(0, 3, 1, 2)


class _MatmulGradConv(torch.autograd.Function):
    """conv2d whose backward takes dX from ATen and dW from :func:`im2col_weight_grad`."""

    # forward runs under the caller's autocast (F.conv2d casts as nn.Conv2d would); backward
    # casts explicitly to grad_out's dtype, so neither needs torch.amp.custom_fwd/custom_bwd
    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        padding: tuple[int, int],
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv2d(x, weight, bias, 1, padding)

    @staticmethod
    @once_differentiable  # a second derivative through it raises instead of being wrong
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        dtype = grad_out.dtype  # the forward's compute dtype (bf16 under autocast)
        x_c, weight_c = x.to(dtype), weight.to(dtype)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad_out, x_c, weight_c, None, [1, 1], list(ctx.padding), [1, 1],
                False, [0, 0], 1, [True, False, False],
            )[0].to(x.dtype)  # fmt: skip
        if ctx.needs_input_grad[1]:
            kernel = (weight.shape[2], weight.shape[3])
            grad_w = im2col_weight_grad(x_c, grad_out, kernel, ctx.padding).to(weight.dtype)
        if ctx.needs_input_grad[2]:  # False when there is no bias
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None


def computes_in_bf16(x: torch.Tensor) -> bool:
    """A CPU conv on ``x`` runs in bf16: ``x`` is bf16, or CPU autocast to bf16 is on."""
    if x.dtype == torch.bfloat16:
        return True
    try:
        enabled = torch.is_autocast_enabled("cpu")
        dtype = torch.get_autocast_dtype("cpu")
    except TypeError:  # torch < 2.4 has only the CPU-specific functions
        enabled, dtype = torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()
    return enabled and dtype == torch.bfloat16


class MatmulGradConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` (stride 1, no dilation or groups, "same" zero padding) whose bf16
    weight gradient on CPU maps of at most ``MAX_POSITIONS`` positions comes from one matrix
    product; fp32 and other devices run ``nn.Conv2d`` unchanged (oneDNN's fp32 kernel is not
    slow there)."""

    def _conv_forward(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        positions = x.shape[-2] * x.shape[-1]  # stride 1 and "same" padding keep the map size
        if (
            x.device.type == "cpu"
            and computes_in_bf16(x)
            and weight.requires_grad
            and torch.is_grad_enabled()
            and positions <= MAX_POSITIONS
            and not torch.jit.is_tracing()
            and not torch.compiler.is_compiling()
        ):
            return _MatmulGradConv.apply(x, weight, bias, self.padding)
        return super()._conv_forward(x, weight, bias)


def eligible(conv: nn.Module) -> bool:
    """A plain ``nn.Conv2d`` that :class:`MatmulGradConv2d` computes exactly: stride 1, no
    dilation, one group, zero padding that keeps the map size (odd square kernel)."""
    return (
        type(conv) is nn.Conv2d
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and isinstance(conv.padding, tuple)
        and conv.kernel_size[0] % 2 == 1
        and conv.kernel_size[0] == conv.kernel_size[1]
        and conv.padding == (conv.kernel_size[0] // 2,) * 2
    )


def use_matmul_weight_grad(model: nn.Module) -> int:
    """Make every :func:`eligible` conv of ``model`` a :class:`MatmulGradConv2d`, in place.

    The swap changes the class only: the same parameters, buffers and state-dict keys, so
    checkpoints and optimisers are unaffected. Returns how many convs were swapped.
    """
    swapped = 0
    for module in model.modules():
        if eligible(module):
            module.__class__ = MatmulGradConv2d
            swapped += 1
    return swapped
