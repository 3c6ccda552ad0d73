"""Softmax + cross-entropy from scratch, forward beside backward (000 3.4).

``p_i = exp(z_i) / sum_j exp(z_j)``, ``L = -sum_i y_i log p_i``, averaged over the batch; the
classic result ``dL/dz = p - y`` (divided by the batch size for the mean).
"""

from __future__ import annotations

import torch

from cnnkit.errors import ShapeError
from cnnkit.reference._checks import require_float, require_rank


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """``z - max(z) - log sum exp(z - max(z))``: subtracting the max keeps ``exp`` finite (000)."""
    shifted = logits - logits.amax(dim=1, keepdim=True)
    return shifted - shifted.exp().sum(dim=1, keepdim=True).log()


def _targets(op: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``y`` as (N, K) probabilities: int64 class indices become one-hot rows."""
    require_rank(op, "logits", logits, 2, "(N, num_classes)")
    n, num_classes = logits.shape
    if target.is_floating_point():
        if tuple(target.shape) != (n, num_classes):
            raise ShapeError(
                f"{op}: probability target has shape {tuple(target.shape)}, "
                f"expected {(n, num_classes)}"
            )
        return target.to(logits.dtype)
    if tuple(target.shape) != (n,):
        raise ShapeError(
            f"{op}: class-index target has shape {tuple(target.shape)}, expected ({n},)"
        )
    if n and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ShapeError(
            f"{op}: target holds a class index outside [0, {num_classes}): "
            f"min {int(target.min())}, max {int(target.max())}"
        )
    return torch.nn.functional.one_hot(target.long(), num_classes).to(logits.dtype)


def softmax_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy ``-(1/N) sum_n sum_i y_ni log softmax(z_n)_i`` (000 3.4).

    ``target`` is (N,) class indices or (N, K) probabilities (as ``F.cross_entropy`` accepts).
    """
    require_float("softmax_cross_entropy", logits=logits)
    y = _targets("softmax_cross_entropy", logits, target)
    return -(y * _log_softmax(logits)).sum() / logits.shape[0]


def softmax_cross_entropy_backward(
    logits: torch.Tensor, target: torch.Tensor, grad_out: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """``dL/dz = grad_out (p - y) / N`` with ``p = softmax(z)`` (000 3.4's "p - y")."""
    require_float("softmax_cross_entropy_backward", logits=logits)
    y = _targets("softmax_cross_entropy_backward", logits, target)
    return grad_out * (_log_softmax(logits).exp() - y) / logits.shape[0]
