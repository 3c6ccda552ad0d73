"""Gradient flow during training (capability F5; seeds 001 and 003).

:func:`gradient_flow` reads a model after ``backward()``: for each module that owns parameters
(in ``named_modules`` order, the forward order for most models) the L2 norm of its gradient,
of its weights, and the relative update since a previous weight snapshot. A vanishing gradient
shows as norms falling by orders of magnitude towards the input (seed 003, section 8). No hooks:
it reads ``.grad`` only. :class:`GradientFlowRecorder` is what ``cnnkit train --grad-flow N``
calls once per optimiser step: every N steps a record into ``grad_flow.csv``, TensorBoard
scalars when asked, and a PNG (one line per epoch) at the end.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnkit._io import atomic_write_text
from cnnkit.errors import ConfigError


@dataclass(frozen=True)
class GradientFlow:
    """Per parameterised layer: ``grad_norms`` ``||g||_2`` (over every parameter of the layer
    that has a gradient), ``weight_norms`` ``||w||_2`` and ``update_ratios``
    ``||w_t - w_prev||_2 / (steps ||w_t||_2)``, the mean relative update per step since the
    snapshot (``None`` without one). ``snapshot`` holds the weights for the next call."""

    layers: tuple[str, ...]
    grad_norms: tuple[float, ...]
    weight_norms: tuple[float, ...]
    update_ratios: tuple[float | None, ...]
    snapshot: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "grad_norms": list(self.grad_norms),
            "weight_norms": list(self.weight_norms),
            "update_ratios": list(self.update_ratios),
        }


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).double() for t in tensors])


def gradient_flow(
    model: nn.Module,
    previous: Mapping[str, torch.Tensor] | None = None,
    *,
    steps: int = 1,
    scale: float = 1.0,
) -> GradientFlow:
    """Gradient and weight norms of every module owning parameters, read after ``backward()``.

    ``previous``: a :attr:`GradientFlow.snapshot` taken ``steps`` optimiser steps ago;
    ``scale``: a loss scale to divide the gradients by (fp16's GradScaler).
    A layer whose parameters have no ``.grad`` gets a gradient norm of 0.
    """
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    layers, grads, weights, ratios = [], [], [], []
    snapshot: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        params = [p for p in module.parameters(recurse=False)]
        if not params:
            continue
        label = name or type(module).__name__
        weight = _flat(params)
        present = [p.grad for p in params if p.grad is not None]
        grad_norm = float(_flat(present).norm()) / scale if present else 0.0
        weight_norm = float(weight.norm())
        ratio = None
        if previous is not None and label in previous and weight_norm > 0:
            delta = (weight - previous[label].to(weight.device)).norm()
            ratio = float(delta) / (steps * weight_norm)
        layers.append(label)
        grads.append(grad_norm)
        weights.append(weight_norm)
        ratios.append(ratio)
        snapshot[label] = weight.clone()
    return GradientFlow(tuple(layers), tuple(grads), tuple(weights), tuple(ratios), snapshot)


class GradientFlowRecorder:
    """Every ``every`` optimiser steps, record :func:`gradient_flow` into ``out_dir``.

    ``grad_flow.csv`` (step, epoch, layer, grad_norm, weight_norm, update_ratio) is rewritten
    atomically at each record; TensorBoard scalars ``grad_flow/<layer>`` go to
    ``out_dir/tensorboard`` when ``tensorboard`` is set and tensorboard is installed;
    :meth:`close` draws ``grad_flow.png`` (the mean norm per layer, one line per epoch).
    """

    def __init__(self, out_dir: str | Path, every: int, *, tensorboard: bool = False) -> None:
        if every < 1:
            raise ConfigError(f"--grad-flow: must be >= 1, got {every}")
        self.out_dir, self.every = Path(out_dir), every
        self.rows: list[tuple[int, int, str, float, float, float | None]] = []
        self.layers: tuple[str, ...] = ()
        self._previous: tuple[int, dict[str, torch.Tensor]] | None = None
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                pass
            else:
                self._writer = SummaryWriter(log_dir=str(self.out_dir / "tensorboard"))

    def after_backward(self, model: nn.Module, step: int, epoch: int, scale: float = 1.0) -> None:
        """Called once per optimiser step, after backward and before the step."""
        if step % self.every:
            return
        prev_step, prev = self._previous if self._previous else (step, None)
        flow = gradient_flow(model, prev, steps=max(step - prev_step, 1), scale=scale)
        self._previous = (step, flow.snapshot)
        self.layers = flow.layers
        for values in zip(
            flow.layers, flow.grad_norms, flow.weight_norms, flow.update_ratios, strict=True
        ):
            self.rows.append((step, epoch, *values))
            if self._writer is not None:
                self._writer.add_scalar(f"grad_flow/{values[0]}", values[1], step)
        atomic_write_text(self.out_dir / "grad_flow.csv", self.csv_text())

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["step", "epoch", "layer", "grad_norm", "weight_norm", "update_ratio"])
        for step, epoch, layer, grad, weight, ratio in self.rows:
            writer.writerow(
                [
                    step,
                    epoch,
                    layer,
                    f"{grad:.6g}",
                    f"{weight:.6g}",
                    "" if ratio is None else f"{ratio:.6g}",
                ]
            )
        return buffer.getvalue()

    def epoch_means(self) -> dict[str, list[float]]:
        """Per epoch, the mean gradient norm of each layer over that epoch's records."""
        sums: dict[int, dict[str, list[float]]] = {}
        for _, epoch, layer, grad, _, _ in self.rows:
            sums.setdefault(epoch, {}).setdefault(layer, []).append(grad)
        return {
            f"epoch {epoch}": [
                sum(by[layer]) / len(by[layer]) if layer in by else 0.0 for layer in self.layers
            ]
            for epoch, by in sorted(sums.items())
        }

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self.rows:
            from cnnkit.explain.render import grad_flow_png

            grad_flow_png(self.layers, self.epoch_means(), self.out_dir / "grad_flow.png")
