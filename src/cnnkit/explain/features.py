"""Feature maps of chosen layers with per-channel statistics (capability F1, seed 001)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnkit.errors import ShapeError
from cnnkit.explain._state import as_batch, eval_mode, logits_of, removing
from cnnkit.explain.layers import get_layer, stage_outputs


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel statistics over the batch and every position: (C,) float32 tensors.

    ``zero_fraction``: the share of exact zeros (dead ReLU units show as 1.0).
    """

    mean: torch.Tensor
    std: torch.Tensor
    max: torch.Tensor
    zero_fraction: torch.Tensor

    @classmethod
    def of(cls, maps: torch.Tensor) -> ChannelStats:
        """Statistics of ``maps`` (B, C, ...): per channel, over every other axis."""
        flat = maps.transpose(0, 1).reshape(maps.shape[1], -1).double()
        return cls(
            mean=flat.mean(dim=1).float(),
            std=flat.std(dim=1, correction=0).float(),
            max=flat.amax(dim=1).float(),
            zero_fraction=(flat == 0).double().mean(dim=1).float(),
        )

    def to_dict(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).tolist() for k in ("mean", "std", "max", "zero_fraction")}


@dataclass(frozen=True)
class LayerMaps:
    """One layer's output ``maps`` (B, C, h, w) float32 and its channel statistics."""

    name: str
    maps: torch.Tensor
    stats: ChannelStats

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.maps.shape), **self.stats.to_dict()}


@dataclass(frozen=True)
class FeatureMaps:
    """The chosen layers' outputs, in the order they were asked for (default: forward order)."""

    layers: tuple[LayerMaps, ...]

    def __getitem__(self, name: str) -> LayerMaps:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [layer.to_dict() for layer in self.layers]}


def feature_maps(
    model: nn.Module, images: torch.Tensor, layers: Sequence[str] | None = None
) -> FeatureMaps:
    """Every chosen layer's output for ``images`` (B, C, H, W), with per-channel mean, std, max
    and fraction of zeros.

    ``layers=None``: each conv stage's last output, from the capture graph
    (:func:`~cnnkit.explain.layers.stage_outputs`). A module called several times gives its last
    call's output. The model runs in eval mode, without gradients, and is left as found.
    """
    x = as_batch(model, images)
    names = list(layers) if layers is not None else stage_outputs(model, (1, *x.shape[1:]))
    modules = [get_layer(model, name) for name in names]
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in zip(names, modules, strict=True):

        def hook(mod: nn.Module, args: Any, output: Any, name: str = name) -> None:
            if isinstance(output, torch.Tensor):
                outputs[name] = output.detach().clone()

        handles.append(module.register_forward_hook(hook))
    with removing(handles), eval_mode(model), torch.no_grad():
        logits_of(model(x))
    result = []
    for name in names:
        if name not in outputs:
            raise ShapeError(f"layer {name} gave no tensor output in the forward pass")
        maps = outputs[name].float().cpu()
        result.append(LayerMaps(name, maps, ChannelStats.of(maps)))
    return FeatureMaps(tuple(result))
