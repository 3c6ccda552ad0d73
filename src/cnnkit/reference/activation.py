"""ReLU from scratch, forward beside backward (000 3.2)."""

from __future__ import annotations

import torch

from cnnkit.reference._checks import require_float, require_shape


def relu(x: torch.Tensor) -> torch.Tensor:
    """``y = max(x, 0)`` elementwise."""
    require_float("relu", input=x)
    return torch.where(x > 0, x, torch.zeros_like(x))


def relu_backward(grad_out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``dL/dx = 1[x > 0] dL/dy`` (000 3.2); the gradient at exactly 0 is 0, as in PyTorch."""
    require_float("relu_backward", grad_out=grad_out, input=x)
    require_shape("relu_backward", "grad_out", grad_out, tuple(x.shape))
    return torch.where(x > 0, grad_out, torch.zeros_like(grad_out))
