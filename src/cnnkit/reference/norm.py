"""Batch normalisation from scratch, forward beside backward (000 3.3, 002, B3).

Per channel ``c``, over the batch and spatial axes (``m = N H W`` values):

    mu_c = (1/m) sum x,   var_c = (1/m) sum (x - mu_c)^2   (biased, as in training)
    x_hat = (x - mu_c) / sqrt(var_c + eps),   y = gamma_c x_hat + beta_c

In evaluation mode ``mu`` and ``var`` are the stored running statistics, constants for the
gradient.
"""

from __future__ import annotations

import torch

from cnnkit.reference._checks import require_float, require_rank, require_shape


def _check(op: str, x: torch.Tensor, **per_channel: torch.Tensor | None) -> None:
    require_float(op, input=x, **per_channel)
    require_rank(op, "input", x, 4, "(N, C, H, W)")
    for name, tensor in per_channel.items():
        if tensor is not None:
            require_shape(op, name, tensor, (x.shape[1],))


def _normalised(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_hat, 1 / sqrt(var + eps))`` with the batch statistics of each channel."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    variance = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    inverse_std = torch.rsqrt(variance + eps)
    return (x - mean) * inverse_std, inverse_std


def batch_norm2d(
    x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """Training-mode BN: ``y = gamma (x - mu_B) / sqrt(var_B + eps) + beta`` (002), with the
    batch mean and biased batch variance of each channel."""
    _check("batch_norm2d", x, gamma=gamma, beta=beta)
    x_hat, _ = _normalised(x, eps)
    return gamma.view(1, -1, 1, 1) * x_hat + beta.view(1, -1, 1, 1)


def batch_norm2d_backward(
    grad_out: torch.Tensor, x: torch.Tensor, gamma: torch.Tensor, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of training-mode BN given ``G = dL/dy`` (000 3.3; the chain rule through
    ``mu`` and ``var``, which depend on every ``x`` of the channel):

    - ``dL/dbeta = sum G``,  ``dL/dgamma = sum G x_hat`` (000)
    - ``dL/dx = gamma / sqrt(var + eps) (G - mean(G) - x_hat mean(G x_hat))``, means per channel

    Returns ``(grad_x, grad_gamma, grad_beta)``.
    """
    _check("batch_norm2d_backward", x, gamma=gamma)
    require_shape("batch_norm2d_backward", "grad_out", grad_out, tuple(x.shape))
    x_hat, inverse_std = _normalised(x, eps)
    axes = (0, 2, 3)
    grad_beta = grad_out.sum(dim=axes)
    grad_gamma = (grad_out * x_hat).sum(dim=axes)
    centred = (
        grad_out
        - grad_out.mean(dim=axes, keepdim=True)
        - x_hat * (grad_out * x_hat).mean(dim=axes, keepdim=True)
    )
    return gamma.view(1, -1, 1, 1) * inverse_std * centred, grad_gamma, grad_beta


def batch_norm2d_eval(
    x: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Evaluation-mode BN: ``y = gamma (x - running_mean) / sqrt(running_var + eps) + beta``
    (002: "inference uses the running mean/variance"); an affine map per channel."""
    _check("batch_norm2d_eval", x, running_mean=running_mean, running_var=running_var,
           gamma=gamma, beta=beta)  # fmt: skip
    scale = gamma * torch.rsqrt(running_var + eps)
    return scale.view(1, -1, 1, 1) * (x - running_mean.view(1, -1, 1, 1)) + beta.view(1, -1, 1, 1)


def batch_norm2d_eval_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    gamma: torch.Tensor,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of evaluation-mode BN: the statistics are constants, so

    ``dL/dx = G gamma / sqrt(running_var + eps)``, ``dL/dgamma = sum G x_hat``,
    ``dL/dbeta = sum G``.

    Returns ``(grad_x, grad_gamma, grad_beta)``.
    """
    _check("batch_norm2d_eval_backward", x, running_mean=running_mean, running_var=running_var,
           gamma=gamma)  # fmt: skip
    require_shape("batch_norm2d_eval_backward", "grad_out", grad_out, tuple(x.shape))
    inverse_std = torch.rsqrt(running_var + eps).view(1, -1, 1, 1)
    x_hat = (x - running_mean.view(1, -1, 1, 1)) * inverse_std
    grad_x = grad_out * gamma.view(1, -1, 1, 1) * inverse_std
    return grad_x, (grad_out * x_hat).sum(dim=(0, 2, 3)), grad_out.sum(dim=(0, 2, 3))
