"""The total receptive field is that of the model's last spatial output, told honestly.

Oracles: which module produced the last map over the input's grid is read from forward hooks
on torchvision's models (the last leaf call whose output is (N, C, H, W) with H, W > 1); whether
an SE gate reaches it from the module tree; jump from the ratio of input to output size; the
fields themselves from the gradient measurements in test_receptive_field and
test_local_receptive_field.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.analysis import summarize
from cnnkit.analysis.render import render_json, render_table
from tests.oracles import torchvision_models


def _last_map(model: nn.Module, shape: tuple[int, ...]) -> str:
    """The name of the last leaf module call whose output is a spatial map."""
    calls: list[str] = []
    hooks = [
        module.register_forward_hook(
            lambda _, __, out, name=name: (
                calls.append(name) if out.dim() == 4 and min(out.shape[2:]) > 1 else None
            )
        )
        for name, module in model.named_modules()
        if not list(module.children())
    ]
    try:
        model(torch.empty(1, *shape, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return calls[-1]


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0", "mobilenet_v3_small", "vgg16"])
def test_the_total_is_the_last_spatial_output(name):
    with torch.device("meta"):
        model = getattr(torchvision_models(), name)().eval()
    shape = (3, 224, 224)
    summary = summarize(model, shape)
    total = summary.total
    assert total.rf_layer == _last_map(model, shape)
    row = [r for r in summary.layers if r.name == total.rf_layer][-1]  # relu runs twice
    has_se = any(type(m).__name__ == "SqueezeExcitation" for m in model.modules())
    assert total.rf_global == (has_se, has_se)
    if has_se:  # the exact field is the whole input; the local one is finite
        assert total.rf == (224, 224) and total.local_rf_global == (False, False)
    else:
        assert total.rf == total.local_rf and total.rf[0] < 1000
    assert total.jump == tuple(224 // n for n in row.output_shape[2:])
    assert None not in total.local_rf


def test_a_global_total_is_rendered_as_global():
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.GroupNorm(1, 4), nn.Conv2d(4, 4, 3))
    summary = summarize(model, (2, 20, 20))
    total = summary.total
    assert total.rf_layer == "2" and total.rf_global == (True, True) and total.rf == (20, 20)
    assert total.local_rf == (5, 5)  # normalisation statistics are broadcast back: cut
    line = render_table(summary).splitlines()[-1]
    assert line == (
        "Receptive field at 2: global (the whole input); local (broadcast inputs cut): 5, "
        "jump 1, start 2.5"
    )


def test_an_unknown_total_is_null_and_said_so():
    """Bicubic taps have no closed form (test_receptive_field): the last map's field is
    unknown, not the field of an earlier map."""
    model = nn.Sequential(nn.Conv2d(2, 2, 3), nn.Upsample(scale_factor=2, mode="bicubic"))
    summary = summarize(model, (2, 16, 16))
    assert summary.total.rf_layer == "1" and summary.total.rf == (None, None)
    assert '"rf": [\n      null,\n      null\n    ]' in render_json(summary)
    assert render_table(summary).splitlines()[-1] == (
        "Receptive field at 1: unknown (no closed form on the path)"
    )


class _AttentionBetween(torch.nn.Module):
    """Strided convs with (or without) attention over every position between them."""

    def __init__(self, strides: tuple[int, int], attention: bool) -> None:
        super().__init__()
        self.attention = attention
        self.first = torch.nn.Conv2d(3, 4, 3, stride=strides[0], padding=1)
        self.second = torch.nn.Conv2d(4, 4, 3, stride=strides[1], padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        if self.attention:
            n, c, h, w = x.shape
            tokens = x.flatten(2).transpose(1, 2)
            mixed = torch.softmax(tokens @ tokens.transpose(1, 2), -1) @ tokens
            x = mixed.transpose(1, 2).reshape(n, c, h, w)
        return self.second(x)


@pytest.mark.parametrize("strides", [(1, 1), (2, 1), (2, 2), (1, 3)])
def test_a_global_field_keeps_the_grid_of_its_map(strides):
    """Attention makes the field global but moves no position: jump and start are the map's
    grid, as without the attention (not the input's size and centre)."""
    with_attention = summarize(_AttentionBetween(strides, True), (3, 24, 24)).total
    plain = summarize(_AttentionBetween(strides, False), (3, 24, 24)).total
    assert with_attention.rf_global == (True, True) and with_attention.rf == (24, 24)
    assert (with_attention.jump, with_attention.start) == (plain.jump, plain.start)


class _Scrambled(torch.nn.Module):
    """A conv, then a view that regroups the map in a way no block split describes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        n, c, h, w = y.shape
        return y.reshape(n, c, w * 2 // 3, h * 3 // 2)  # 12x12 -> 8x18


def test_the_total_never_falls_back_to_an_earlier_map():
    summary = summarize(_Scrambled(), (3, 12, 12))
    assert summary.layers[-1].output_shape == (1, 4, 8, 18)
    assert summary.total.rf_layer == summary.layers[-1].name
    assert summary.total.rf == (None, None)  # unknown, not the conv's 3
