"""Effective receptive field (capability F4) after Luo et al. (2016).

Luo, Li, Urtasun, Zemel, "Understanding the Effective Receptive Field in Deep Convolutional
Neural Networks" (NeurIPS 2016): set the gradient at the central output unit of a layer to 1
(all channels) and 0 elsewhere, back-propagate to the input, and average ``|dy_centre / dx|``
over inputs (random ones, or real images) and input channels. The map is normalised to sum to 1.
For n stacked 3x3 box filters without nonlinearity it is the n-fold convolution of the box,
a discrete Gaussian whose width grows like sqrt(n) while the theoretical field grows like n.

The backward runs in float64 on float64 copies of the parameters and buffers
(``torch.func.functional_call``): in float32 the far tail of the field underflows
(ecosystem-notes.md); the model itself is not touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnkit.errors import ConfigError, ShapeError
from cnnkit.explain._state import eval_mode, removing
from cnnkit.explain.layers import get_layer, last_conv_layer

LEVELS = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class ErfResult:
    """The effective receptive field of ``layer``'s central unit.

    Attributes:
        map: (H, W) float64 over the input, summing to 1.
        centre: (row, column) of the map's centre of mass, in input pixels.
        radii: {0.5, 0.9, 0.99}: the smallest radius (Euclidean, in pixels, around ``centre``)
            of a disc holding that share of the gradient mass.
        theoretical_rf: the exact field per axis from ``cnnkit summary`` (None if unknown).
        layer: dotted name of the layer; samples: inputs averaged.
    """

    map: torch.Tensor
    centre: tuple[float, float]
    radii: dict[float, float]
    theoretical_rf: tuple[int | None, ...] | None
    layer: str
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "samples": self.samples,
            "centre": list(self.centre),
            "radii": {str(k): v for k, v in self.radii.items()},
            "theoretical_rf": None if self.theoretical_rf is None else list(self.theoretical_rf),
            "input_size": list(self.map.shape),
        }


def mass_radii(
    mass: torch.Tensor, levels: Sequence[float] = LEVELS
) -> tuple[tuple[float, float], dict[float, float]]:
    """Centre of mass of ``mass`` (H, W, summing to 1) and, per level, the smallest pixel-centre
    distance r such that the pixels within r hold at least that share."""
    height, width = mass.shape
    rows = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
    cols = torch.arange(width, dtype=torch.float64)[None, :].expand(height, width)
    centre = (float((rows * mass).sum()), float((cols * mass).sum()))
    distance = ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2).sqrt().flatten()
    order = distance.argsort()
    cumulative = mass.flatten()[order].cumsum(0)
    radii = {}
    for level in levels:
        index = int(
            torch.searchsorted(cumulative, torch.tensor(level - 1e-12, dtype=torch.float64))
        )
        radii[level] = float(distance[order[min(index, len(order) - 1)]])
    return centre, radii


def _theoretical_rf(model: nn.Module, input_shape: Sequence[int], layer: str):
    from cnnkit.analysis import summarize

    summary = summarize(model, tuple(input_shape))
    rows = [row for row in summary.layers if row.name == layer or row.name.startswith(layer + ".")]
    if not rows or rows[-1].rf is None:
        return None
    return tuple(rows[-1].rf)


def effective_receptive_field(
    model: nn.Module,
    input_shape: Sequence[int],
    layer: str | None = None,
    samples: int = 16,
    images: torch.Tensor | None = None,
    seed: int = 0,
) -> ErfResult:
    """The ERF of ``layer``'s central output unit (Luo et al. 2016), averaged over ``samples``
    standard-normal inputs of ``input_shape`` (C, H, W), or over ``images`` when given.

    ``layer=None``: the last conv-like layer with a spatial output (capture graph).
    ``|dy/dx|`` summed over the input channels and the inputs, ``map = that / its sum``.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ConfigError(f"input_shape must be (C, H, W), got {shape}")
    if images is None:
        if samples < 1:
            raise ConfigError(f"samples must be >= 1, got {samples}")
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn((samples, *shape), generator=generator, dtype=torch.float64)
    else:
        x = images.detach().to(torch.float64).clone()
        if tuple(x.shape[1:]) != shape:
            raise ConfigError(f"images {tuple(x.shape)} do not match input_shape {shape}")
    if layer is None:
        layer = last_conv_layer(model, (1, *shape))
    module = get_layer(model, layer)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = x.to(device).requires_grad_(True)
    state = {
        name: (t.detach().to(torch.float64) if t.is_floating_point() else t)
        for name, t in list(model.named_parameters()) + list(model.named_buffers())
    }
    captured: list[torch.Tensor] = []

    def hook(mod: nn.Module, args: Any, output: Any) -> None:
        captured.append(output)

    with removing([module.register_forward_hook(hook)]), eval_mode(model), torch.enable_grad():
        torch.func.functional_call(model, state, (x,))
        if not captured or not isinstance(captured[-1], torch.Tensor) or captured[-1].dim() != 4:
            raise ShapeError(f"layer {layer} has no spatial output (B, C, h, w)")
        out = captured[-1]
        centre_unit = out[:, :, out.shape[2] // 2, out.shape[3] // 2].sum()
        (grad,) = torch.autograd.grad(centre_unit, x)
    mass = grad.abs().sum(dim=(0, 1)).cpu()
    total = mass.sum()
    if total <= 0:
        raise ShapeError(f"layer {layer}: the central unit does not depend on the input")
    mass = mass / total
    centre, radii = mass_radii(mass)
    return ErfResult(
        map=mass,
        centre=centre,
        radii=radii,
        theoretical_rf=_theoretical_rf(model, shape, layer),
        layer=layer,
        samples=int(x.shape[0]),
    )
