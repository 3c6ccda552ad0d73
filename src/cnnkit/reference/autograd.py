"""``torch.autograd.Function`` wrappers: each reference forward with its hand-written backward.

They let ``torch.autograd.gradcheck`` (finite differences) drive a pair, and let a reference op
sit inside an ordinary PyTorch graph (micrograd's pattern: the test is the same expression in
PyTorch). Non-tensor arguments get ``None`` gradients.
"""

from __future__ import annotations

from typing import Any

import torch

from cnnkit.reference._geometry import IntOrPair
from cnnkit.reference.activation import relu, relu_backward
from cnnkit.reference.conv import ConvMethod, conv2d, conv2d_backward
from cnnkit.reference.loss import softmax_cross_entropy, softmax_cross_entropy_backward
from cnnkit.reference.norm import batch_norm2d, batch_norm2d_backward
from cnnkit.reference.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from cnnkit.reference.transposed import conv_transpose2d, conv_transpose2d_backward


class Conv2dFunction(torch.autograd.Function):
    """``apply(x, weight, bias, stride, padding, dilation, groups, method)``."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        stride: IntOrPair,
        padding: IntOrPair,
        dilation: IntOrPair,
        groups: int,
        method: ConvMethod,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.arguments = (stride, padding, dilation, groups)
        ctx.has_bias = bias is not None
        return conv2d(x, weight, bias, stride, padding, dilation, groups, method)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad_x, grad_w, grad_b = conv2d_backward(grad_out, x, weight, *ctx.arguments)
        return grad_x, grad_w, grad_b if ctx.has_bias else None, None, None, None, None, None


class ConvTranspose2dFunction(torch.autograd.Function):
    """``apply(x, weight, bias, stride, padding, output_padding, dilation, groups)``."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        stride: IntOrPair,
        padding: IntOrPair,
        output_padding: IntOrPair,
        dilation: IntOrPair,
        groups: int,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.arguments = (stride, padding, output_padding, dilation, groups)
        ctx.has_bias = bias is not None
        return conv_transpose2d(x, weight, bias, *ctx.arguments)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad_x, grad_w, grad_b = conv_transpose2d_backward(grad_out, x, weight, *ctx.arguments)
        return grad_x, grad_w, grad_b if ctx.has_bias else None, None, None, None, None, None


class MaxPool2dFunction(torch.autograd.Function):
    """``apply(x, kernel_size, stride, padding, dilation, ceil_mode)``."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        kernel_size: IntOrPair,
        stride: IntOrPair | None,
        padding: IntOrPair,
        dilation: IntOrPair,
        ceil_mode: bool,
    ) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.arguments = (kernel_size, stride, padding, dilation, ceil_mode)
        return max_pool2d(x, *ctx.arguments)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (x,) = ctx.saved_tensors
        return max_pool2d_backward(grad_out, x, *ctx.arguments), None, None, None, None, None


class AvgPool2dFunction(torch.autograd.Function):
    """``apply(x, kernel_size, stride, padding, ceil_mode, count_include_pad)``."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        kernel_size: IntOrPair,
        stride: IntOrPair | None,
        padding: IntOrPair,
        ceil_mode: bool,
        count_include_pad: bool,
    ) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.arguments = (kernel_size, stride, padding, ceil_mode, count_include_pad)
        return avg_pool2d(x, *ctx.arguments)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (x,) = ctx.saved_tensors
        return avg_pool2d_backward(grad_out, x, *ctx.arguments), None, None, None, None, None


class BatchNorm2dFunction(torch.autograd.Function):
    """``apply(x, gamma, beta, eps)`` (training statistics)."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float
    ) -> torch.Tensor:
        ctx.save_for_backward(x, gamma)
        ctx.eps = eps
        return batch_norm2d(x, gamma, beta, eps)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, gamma = ctx.saved_tensors
        return (*batch_norm2d_backward(grad_out, x, gamma, ctx.eps), None)


class ReLUFunction(torch.autograd.Function):
    """``apply(x)``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return relu(x)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return relu_backward(grad_out, x)


class SoftmaxCrossEntropyFunction(torch.autograd.Function):
    """``apply(logits, target)``: mean loss; ``target`` gets no gradient."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(logits, target)
        return softmax_cross_entropy(logits, target)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        logits, target = ctx.saved_tensors
        return softmax_cross_entropy_backward(logits, target, grad_out), None
