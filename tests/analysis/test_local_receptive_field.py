"""The local receptive field against an empirical measurement.

The local field of axis a cuts every input an op broadcasts along a (an SE gate of shape
(N, C, 1, 1), a pooled context added back or upsampled from one pixel, the statistics of a
normalisation or softmax). The oracle does exactly that to a copy of the forward pass: every
such input is detached, and in float64 with positive weights the input pixels with a non-zero
gradient of one output are the ones it sees through the remaining paths. The same models
without the cut check the exact field: global where a broadcast branch reaches everything.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.analysis import summarize
from cnnkit.errors import ShapeError
from cnnkit.models import create_model
from cnnkit.models.efficientnet import EfficientNet, scaled_stages
from cnnkit.nn import SqueezeExcitation

EPS = 1e-5


def positive(model: nn.Module) -> nn.Module:
    """Weights in [0.1, 1] / fan-in (activations stay near 1), zero biases, float64, eval."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            else:
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.copy_((torch.rand_like(p) * 0.9 + 0.1) / fan_in)
    return model.double().eval()


def support(model: nn.Module, shape: tuple[int, ...], position: tuple[int, ...] | None, axis: int):
    """(first, last) input index along ``axis`` with a non-zero gradient of output
    ``position`` (sample 0, all channels; ``None``: every position); ``None`` when no input
    pixel reaches it. The outputs are summed with random positive weights: a plain sum of
    normalised outputs can be constant (a softmax sums to 1) and hide what they see."""
    x = (torch.rand(2, *shape, dtype=torch.float64) + 0.5).requires_grad_(True)
    out = model(x)
    index = (0,) if position is None else (0, slice(None), *position)
    chosen = out[index]
    weights = torch.rand_like(chosen) + 0.5
    (grad,) = torch.autograd.grad((chosen * weights).sum(), x)
    seen = grad[0].abs().sum(0).sum(1 - axis)
    hits = torch.nonzero(seen).flatten()
    return None if len(hits) == 0 else (int(hits.min()), int(hits.max()))


class Broadcasts(nn.Module):
    """Random blocks over a 2-channel map, each with its own way of broadcasting a global or
    per-axis value back over the map. ``cut`` holds dims (2: H, 3: W): an input broadcast
    along one of them is detached (the oracle of the local field)."""

    def __init__(self, blocks: list[dict]) -> None:
        super().__init__()
        self.blocks = blocks
        self.cut: frozenset[int] = frozenset()
        self.layers = nn.ModuleList(self._make(block) for block in blocks)

    @staticmethod
    def _make(block: dict) -> nn.Module:
        kind = block["kind"]
        if kind == "conv":
            return nn.Conv2d(2, 2, block["kernel"], block["stride"], block["padding"],
                             block["dilation"])  # fmt: skip
        if kind == "pool":
            return nn.AvgPool2d(block["kernel"], block["stride"], block["padding"])
        if kind in ("residual", "axis_context"):
            k, d = block["kernel"], block["dilation"]
            return nn.Conv2d(2, 2, k, padding=d * (k - 1) // 2, dilation=d)
        if kind == "se" and block["style"].startswith("eca"):  # a 1-D conv over the channels
            return nn.Conv1d(1, 1, 3, padding=1, bias=False)
        if kind == "se" and block["style"] != "conv":
            return nn.Linear(2, 2)
        if kind in ("se", "context"):
            return nn.Conv2d(2, 2, 1)
        if kind == "norm" and block["style"] in ("group", "batch"):
            return nn.GroupNorm(1, 2) if block["style"] == "group" else nn.BatchNorm2d(2)
        if kind == "linear":
            return nn.Linear(2, 2)
        return nn.Identity()

    def _cut(self, value: torch.Tensor, along: set[int]) -> torch.Tensor:
        return value.detach() if self.cut & along else value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, layer in zip(self.blocks, self.layers, strict=True):
            x = getattr(self, "_" + block["kind"])(block, layer, x)
        return x

    def _conv(self, block: dict, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(layer(x))

    _pool = _conv

    def _residual(self, block: dict, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return x + layer(x)

    def _se(self, block: dict, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        if block["style"] == "conv":  # torchvision's SqueezeExcitation: (N, C, 1, 1) gate
            return x * self._cut(torch.sigmoid(layer(x.mean((2, 3), keepdim=True))), {2, 3})
        if block["style"] == "unsqueeze":
            gate = torch.sigmoid(layer(x.mean((2, 3))))[:, :, None, None]
            return x * self._cut(gate, {2, 3})
        if block["style"] == "eca":  # timm's EcaModule: squeeze, transpose, conv1d, back
            pooled = F.adaptive_avg_pool2d(x, 1).squeeze(-1).transpose(-1, -2)
            gate = layer(pooled).transpose(-1, -2).unsqueeze(-1).sigmoid()
            return x * self._cut(gate, {2, 3})
        if block["style"] == "eca_expand":  # the pooled vector viewed as a 1-D signal
            gate = layer(x.mean((2, 3)).view(n, 1, c)).view(n, c, 1, 1).sigmoid()
            return x * self._cut(gate, {2, 3}).expand_as(x)
        pooled = F.adaptive_avg_pool2d(x, 1).view(n, c)  # SENet's code: view, expand_as
        gate = torch.sigmoid(layer(pooled)).view(n, c, 1, 1)
        return x * self._cut(gate, {2, 3}).expand_as(x)

    # Added contexts go through a softplus: a later softmax along the broadcast axis would
    # cancel a constant added along it (a function that ignores its input hides the path).

    def _context(self, block: dict, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        context = self._cut(layer(F.adaptive_avg_pool2d(x, 1)), {2, 3})
        if block["style"] == "add":  # GCNet: a pooled context added to every position
            return F.softplus(x + context)
        return F.softplus(x + F.interpolate(context, size=x.shape[2:], mode=block["style"]))

    def _axis_context(self, block: dict, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        dim = block["dim"]  # a per-row (or per-column) context: broadcast along one axis
        return F.softplus(x + self._cut(layer(x).mean(dim, keepdim=True), {dim}))

    def _norm(self, block: dict, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        # softplus after it: a normalised map has constant sums (a softmax row sums to 1), so a
        # later mean over it would not depend on the input at all
        return F.softplus(self._normalised(block, layer, x))

    def _normalised(self, block: dict, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        style = block["style"]
        if style.startswith("softmax"):
            dim = 3 if style == "softmax_w" else 2
            if dim not in self.cut:
                return torch.softmax(x, dim)
            return x.exp() / x.exp().sum(dim, keepdim=True).detach()
        dims = (1, 2, 3) if style == "group" else (0, 2, 3)
        if not self.cut:
            if style == "group":
                return layer(x)
            return F.batch_norm(x, None, None, layer.weight, layer.bias, training=True, eps=EPS)
        mean = x.mean(dims, keepdim=True).detach()
        var = x.var(dims, keepdim=True, unbiased=False).detach()
        shape = (1, -1, 1, 1)
        return (x - mean) / (var + EPS).sqrt() * layer.weight.view(shape) + layer.bias.view(shape)

    def _crop(self, block: dict, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        top, left = block["offsets"]
        return x[:, :, top:, left:]

    def _linear(self, block: dict, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return layer(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # per position (ConvNeXt)


pair = st.tuples(st.integers(1, 4), st.integers(1, 4))
spatial_block = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("conv"),
            "kernel": pair,
            "stride": st.tuples(st.integers(1, 2), st.integers(1, 2)),
            "padding": st.tuples(st.integers(0, 2), st.integers(0, 2)),
            "dilation": st.tuples(st.integers(1, 2), st.integers(1, 2)),
        }
    ),
    st.integers(1, 3).flatmap(
        lambda k: st.fixed_dictionaries(
            {
                "kind": st.just("pool"),
                "kernel": st.just(k),
                "stride": st.integers(1, 2),
                "padding": st.integers(0, k // 2),
            }
        )
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("residual"),
            "kernel": st.sampled_from([1, 3, 5]),
            "dilation": st.integers(1, 2),
        }
    ),
    st.fixed_dictionaries(
        {"kind": st.just("crop"), "offsets": st.tuples(st.integers(0, 2), st.integers(0, 2))}
    ),
    st.fixed_dictionaries({"kind": st.just("linear")}),
)
broadcast_block = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("se"),
            "style": st.sampled_from(["conv", "unsqueeze", "expand", "eca", "eca_expand"]),
        }
    ),
    st.fixed_dictionaries(
        {"kind": st.just("context"), "style": st.sampled_from(["add", "nearest", "bilinear"])}
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("axis_context"),
            "dim": st.sampled_from([2, 3]),
            "kernel": st.sampled_from([1, 3, 5]),
            "dilation": st.integers(1, 2),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("norm"),
            "style": st.sampled_from(["group", "batch", "softmax_w", "softmax_h"]),
        }
    ),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    blocks=st.lists(st.one_of(spatial_block, broadcast_block), min_size=2, max_size=6),
    size=st.tuples(st.integers(32, 96), st.integers(32, 96)),
    seed=st.integers(0, 2**16),
)
def test_local_field_equals_the_gradient_with_every_broadcast_cut(blocks, size, seed):
    torch.manual_seed(seed)
    model = positive(Broadcasts(blocks))
    try:
        summary = summarize(model, (2, *size), batch_size=2)
    except ShapeError:
        assume(False)
    out = summary.layers[-1]
    assert out.local_rf is not None and None not in out.local_rf
    # the output is a map over the input's grid: the totals describe it
    assert summary.total.rf_layer == out.name and summary.total.local_rf == out.local_rf
    assert (summary.total.rf, summary.total.rf_global) == (out.rf, out.rf_global)
    position = tuple(n // 2 for n in out.output_shape[2:])
    checked = 0
    for axis, n in enumerate(size):
        centre = out.start[axis] + position[axis] * out.jump[axis]
        for cut, width, whole in (
            (frozenset({2 + axis}), out.local_rf[axis], out.local_rf_global[axis]),
            (frozenset(), out.rf[axis], out.rf_global[axis]),
        ):
            model.cut = cut
            seen = support(model, (2, *size), position, axis)
            if whole:  # global: rf is the input's extent, and one output sees what all see
                # (every pixel but those no position of the pooled map reaches: a stride may
                # skip the last rows)
                assert width == n and seen == support(model, (2, *size), None, axis)
                checked += 1
                continue
            low, high = centre - width / 2, centre + width / 2 - 1
            if low > 0 and high < n - 1:  # measurable: not clipped by the image
                assert seen == (low, high), (axis, "local" if cut else "exact")
                checked += 1
    assume(checked)


class Tokens(nn.Module):
    """Softmax attention over the flattened positions (each query sees every key)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).transpose(1, 2)
        mixed = torch.softmax(tokens @ tokens.transpose(1, 2), dim=-1) @ tokens
        return mixed.transpose(1, 2).reshape(x.shape)


def test_attention_makes_even_the_local_field_global():
    """Attention mixes positions through a matrix product, not a broadcast: nothing to cut."""
    model = positive(nn.Sequential(nn.Conv2d(2, 2, 3), Tokens(), nn.Conv2d(2, 2, 3)))
    out = summarize(model, (2, 20, 20)).layers[-1]
    assert out.rf_global == out.local_rf_global == (True, True)
    assert out.rf == out.local_rf == (20, 20)
    for axis in range(2):
        assert support(model, (2, 20, 20), (8, 8), axis) == (0, 19)


def _cut_gate(module: SqueezeExcitation, input: torch.Tensor) -> torch.Tensor:
    return input * module.gate(input).detach()


@pytest.mark.slow
def test_efficientnet_b0_local_field_is_measured_through_its_convolutions():
    """EfficientNet-B0's geometry (every kernel, stride and repeat of the zoo model), narrowed
    to 8 channels so that a 1024 px float64 gradient is cheap: the last feature map's exact
    field is global (every SE gate sees the whole image) and its local field is measured with
    the gates detached."""
    narrow = [replace(stage, in_channels=8, out_channels=8) for stage in scaled_stages("b0")]
    model = EfficientNet(narrow, dropout=0.0, in_channels=1, num_classes=2)
    features = positive(model.features)
    size = 1024
    summary = summarize(features, (1, size, size), batch_size=2)
    out = summary.layers[-1]
    assert summary.total.rf_layer == out.name == "8.2"
    assert summary.total.rf_global == (True, True) and summary.total.rf == (size, size)
    zoo = summarize(lambda: create_model("efficientnet_b0"), (3, 224, 224))
    assert zoo.total.local_rf == summary.total.local_rf  # same geometry, any width and input
    assert zoo.total.rf_layer == "features.8.2" and zoo.total.rf_global == (True, True)
    for module in features.modules():
        if isinstance(module, SqueezeExcitation):
            module.forward = functools.partial(_cut_gate, module)
    position = tuple(n // 2 for n in out.output_shape[2:])
    for axis in range(2):
        centre = out.start[axis] + position[axis] * out.jump[axis]
        half = out.local_rf[axis] / 2
        assert centre - half > 0 and centre + half < size
        assert support(features, (1, size, size), position, axis) == (
            centre - half,
            centre + half - 1,
        )


class Stretched(nn.Module):
    """Only a broadcast reaches the output: a pooled gate expanded, or upsampled from 1x1."""

    def __init__(self, style: str) -> None:
        super().__init__()
        self.style, self.cut = style, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean((2, 3), keepdim=True)
        pooled = pooled.detach() if self.cut else pooled
        if self.style == "expand":
            return torch.sigmoid(pooled).expand_as(x)
        return F.interpolate(pooled, size=x.shape[2:], mode="nearest")


@pytest.mark.parametrize("style", ["expand", "nearest"])
def test_a_map_only_broadcasts_reach_has_a_local_field_of_0(style):
    model = Stretched(style)
    out = summarize(model, (2, 16, 16)).layers[-1]
    assert out.rf_global == (True, True) and out.local_rf == (0, 0)
    model.cut = True  # once the broadcast input is cut, the output depends on no input pixel
    assert not model(torch.rand(1, 2, 16, 16, requires_grad=True)).requires_grad
    model.cut = False
    assert support(model, (2, 16, 16), (8, 8), 0) == (0, 15)


@pytest.mark.parametrize("style", ["eca", "eca_expand"])
def test_eca_gates_are_cut_from_the_local_field_like_se(style):
    """ECA: a 1-D conv over the pooled channel vector gates the map (25 timm models)."""
    blocks = [{"kind": "conv", "kernel": 3, "stride": 1, "padding": 1, "dilation": 1},
              {"kind": "se", "style": style},
              {"kind": "conv", "kernel": 3, "stride": 1, "padding": 1, "dilation": 1}]  # fmt: skip
    model = positive(Broadcasts(blocks))
    summary = summarize(model, (2, 16, 16))
    assert summary.total.rf_global == (True, True)
    assert summary.total.local_rf == (5, 5) and summary.total.local_rf_global == (False, False)
    model.cut = frozenset({2, 3})
    assert support(model, (2, 16, 16), (8, 8), 0) == (6, 10)  # 5 pixels, gates detached
