"""Learned filters (capability F2): the first conv's kernels, every conv's per-filter norms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnkit.errors import ShapeError


@dataclass(frozen=True)
class Filters:
    """``kernels``: the first conv's weight (out, in, kh, kw) float32, as stored; ``norms``:
    per conv layer (forward order), the L2 norm of each output filter's weights."""

    first_layer: str
    kernels: torch.Tensor
    norms: dict[str, torch.Tensor]

    def to_dict(self) -> dict[str, Any]:
        return {
            "first_layer": self.first_layer,
            "kernel_shape": list(self.kernels.shape),
            "norms": {name: values.tolist() for name, values in self.norms.items()},
        }


def conv_layers(model: nn.Module, input_shape: Sequence[int]) -> list[str]:
    """Dotted names of the modules running a convolution, in forward order (capture graph)."""
    from cnnkit.analysis import capture

    graph = capture(model, tuple(input_shape), mode="eval")
    names: list[str] = []
    for node in graph.nodes:
        if node.name in ("convolution", "convolution_"):
            call = graph.calls[node.call]
            if call.kind == "module" and call.index != 0 and call.name not in names:
                names.append(call.name)
    return names


def filters(model: nn.Module, input_shape: Sequence[int]) -> Filters:
    """The first conv layer's kernels and, for every conv layer, ``||W_o||_2`` per output
    filter ``o`` (over its input channels and kernel positions).

    ``input_shape``: one image's (C, H, W), to find the conv layers in forward order.
    """
    names = conv_layers(model, (1, *input_shape))
    modules = dict(model.named_modules())
    norms: dict[str, torch.Tensor] = {}
    for name in names:
        weight = getattr(modules[name], "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dim() < 3:
            continue
        if isinstance(modules[name], nn.modules.conv._ConvTransposeNd):
            weight = weight.transpose(0, 1)  # stored (in, out / groups, ...)
        norms[name] = weight.detach().flatten(1).double().norm(dim=1).float().cpu()
    if not norms:
        raise ShapeError(f"{type(model).__name__}: no conv layer with a weight")
    first = next(iter(norms))
    kernels = modules[first].weight.detach().float().cpu().clone()
    return Filters(first, kernels, norms)
