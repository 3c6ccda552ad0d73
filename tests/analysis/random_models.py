"""Random models for property tests: convolutions of every kind, pools, norms, activations,
residual adds, concatenations, SE multiplies, per-position Linear (ConvNeXt style), upsampling.

``net_specs()`` is a hypothesis strategy of layer specs; ``RandomNet(specs, in_channels)``
builds them. A spec that gives an empty output is left to the caller (a ShapeError).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


pair = st.tuples(st.integers(1, 5), st.integers(1, 5))


@st.composite
def conv_spec(draw: st.DrawFn) -> dict:
    return {
        "kind": "conv",
        "out": draw(st.integers(1, 12)),
        "kernel": draw(pair),
        "stride": draw(st.tuples(st.integers(1, 3), st.integers(1, 3))),
        "padding": draw(st.tuples(st.integers(0, 2), st.integers(0, 2))),
        "dilation": draw(st.tuples(st.integers(1, 3), st.integers(1, 3))),
        "groups": draw(st.integers(1, 4)),
        "bias": draw(st.booleans()),
        "transposed": draw(st.booleans()),
    }


layer_spec = st.one_of(
    conv_spec(),
    st.fixed_dictionaries(
        {"kind": st.just("depthwise"), "kernel": st.sampled_from([(1, 3), (3, 3), (5, 1)])}
    ),
    st.fixed_dictionaries({"kind": st.sampled_from(["bn", "relu", "gelu", "sigmoid", "se"])}),
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["maxpool", "avgpool"]), "kernel": st.integers(1, 3)}
    ),
    st.fixed_dictionaries({"kind": st.just("adaptive"), "size": st.integers(1, 4)}),
    st.fixed_dictionaries({"kind": st.sampled_from(["residual", "concat", "pointwise_linear"])}),
    st.fixed_dictionaries(
        {"kind": st.just("upsample"), "mode": st.sampled_from(["nearest", "bilinear"])}
    ),
)


def net_specs(max_layers: int = 6) -> st.SearchStrategy[list[dict]]:
    return st.lists(layer_spec, min_size=1, max_size=max_layers)


class RandomNet(nn.Module):
    def __init__(self, specs: list[dict], in_channels: int) -> None:
        super().__init__()
        self.specs = specs
        self.layers = nn.ModuleList()
        channels = in_channels
        for spec in specs:
            layer, channels = self._make(spec, channels)
            self.layers.append(layer)
        self.out_channels = channels

    @staticmethod
    def _make(spec: dict, c: int) -> tuple[nn.Module, int]:
        kind = spec["kind"]
        if kind == "conv":
            groups = max(g for g in _divisors(c) if g <= spec["groups"])
            out = spec["out"] * groups
            if spec["transposed"]:
                stride = spec["stride"]
                extra = tuple(
                    min(p, max(s, d) - 1)
                    for p, s, d in zip((1, 1), stride, spec["dilation"], strict=True)
                )
                layer = nn.ConvTranspose2d(
                    c, out, spec["kernel"], stride, spec["padding"], extra, groups,
                    spec["bias"], spec["dilation"],
                )  # fmt: skip
            else:
                layer = nn.Conv2d(
                    c, out, spec["kernel"], spec["stride"], spec["padding"], spec["dilation"],
                    groups, spec["bias"],
                )  # fmt: skip
            return layer, out
        if kind == "depthwise":
            return nn.Conv2d(c, 2 * c, spec["kernel"], groups=c, padding="same"), 2 * c
        if kind == "bn":
            return nn.BatchNorm2d(c), c
        if kind in ("relu", "gelu", "sigmoid"):
            return {"relu": nn.ReLU(), "gelu": nn.GELU(), "sigmoid": nn.Sigmoid()}[kind], c
        if kind == "se":
            return nn.Sequential(
                nn.Linear(c, max(c // 2, 1)), nn.ReLU(), nn.Linear(max(c // 2, 1), c)
            ), c
        if kind == "maxpool":
            return nn.MaxPool2d(spec["kernel"], ceil_mode=True), c
        if kind == "avgpool":
            return nn.AvgPool2d(spec["kernel"], stride=1, padding=spec["kernel"] // 2), c
        if kind == "adaptive":
            return nn.AdaptiveAvgPool2d(spec["size"]), c
        if kind == "residual":
            return nn.Conv2d(c, c, 3, padding=1), c
        if kind == "concat":
            return nn.Conv2d(c, 3, 1), c + 3
        if kind == "pointwise_linear":
            return nn.Linear(c, c + 1), c + 1
        if kind == "upsample":
            return nn.Upsample(scale_factor=2, mode=spec["mode"]), c
        raise ValueError(kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for spec, layer in zip(self.specs, self.layers, strict=True):
            kind = spec["kind"]
            if kind == "se":  # squeeze-excitation: a global branch multiplies the map
                scale = torch.sigmoid(layer(x.mean(dim=(2, 3))))
                x = x * scale[:, :, None, None]
            elif kind == "residual":
                x = x + layer(x)
            elif kind == "concat":
                x = torch.cat([x, layer(x)], dim=1)
            elif kind == "pointwise_linear":
                x = layer(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            else:
                x = layer(x)
        return F.relu(x)
