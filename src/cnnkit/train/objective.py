"""The step's objective seam: ``(model, images, targets) -> (loss, logits)``.

The loop calls the objective once per batch and backpropagates the loss it returns; the
logits feed the training accuracy. Cross-entropy (with class weights and label smoothing) is
the objective today; a distillation or contrastive loss is another function of this shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

import torch
from torch import nn
from torch.nn import functional as F

from cnnkit import runtime

if TYPE_CHECKING:
    from cnnkit.train.config import OptimisationConfig

Objective: TypeAlias = Callable[
    [nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]
]


def cross_entropy_objective(
    device: torch.device,
    dtype: torch.dtype | None,
    *,
    class_weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> Objective:
    """Forward under autocast (``dtype``), then ``F.cross_entropy`` on fp32 logits.

    The loss is ``-sum_c w_c q_c log softmax(z)_c`` averaged over the batch (weighted by the
    targets' class weights), with ``q`` the one-hot (or mixed) target smoothed by
    ``label_smoothing``: PyTorch's definition, computed by PyTorch.
    """

    def objective(
        model: nn.Module, images: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with runtime.autocast(device, dtype):
            logits = model(images)
        loss = F.cross_entropy(
            logits.float(), targets, weight=class_weights, label_smoothing=label_smoothing
        )
        return loss, logits

    return objective


def objective_for(
    optimisation: OptimisationConfig, device: torch.device, dtype: torch.dtype | None
) -> Objective:
    """The objective a run's optimisation section asks for (cross-entropy, its class weights
    and label smoothing)."""
    return cross_entropy_objective(
        device,
        dtype,
        class_weights=class_weight_tensor(optimisation, device),
        label_smoothing=optimisation.label_smoothing,
    )


def class_weight_tensor(
    optimisation: OptimisationConfig, device: torch.device
) -> torch.Tensor | None:
    """``--class-weights`` as the tensor ``F.cross_entropy`` takes (None: all classes alike);
    the plain and the distillation objectives share it."""
    weights = optimisation.class_weights
    return torch.tensor(weights, device=device) if weights else None
