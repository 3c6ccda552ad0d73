"""Receptive field, jump and start against an empirical measurement and published figures.

The measurement: in float64, with positive weights, zero biases, a positive input and average
pools, the gradient of one output position w.r.t. the input is positive exactly where that
output can see; its bounding box must be [start + i jump - rf/2, start + i jump + rf/2) on
every axis (seed 002's convention, pixel p covering [p, p + 1)).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.analysis import summarize
from cnnkit.errors import ShapeError
from tests.oracles import torchvision_models

SIZE = 112


def _positive(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.rand_like(p) * 0.9 + 0.1 if "bias" not in name else torch.zeros_like(p))
    return model.double().eval()


def _support(model: nn.Module, shape: tuple[int, ...], position: tuple[int, ...]) -> list:
    """Per axis, the (first, last) input index whose gradient is non-zero."""
    x = (torch.rand(1, *shape, dtype=torch.float64) + 0.5).requires_grad_(True)
    out = model(x)
    index = (0, slice(None), *position)
    (grad,) = torch.autograd.grad(out[index].sum(), x)
    seen = grad[0].abs().sum(0)
    boxes = []
    for axis in range(seen.dim()):
        others = tuple(d for d in range(seen.dim()) if d != axis)
        hits = torch.nonzero(seen.sum(others) if others else seen).flatten()
        boxes.append((int(hits.min()), int(hits.max())))
    return boxes


def _predicted(rf, jump, start, position):
    return [
        (a + i * j - r / 2, a + i * j + r / 2 - 1)
        for r, j, a, i in zip(rf, jump, start, position, strict=True)
    ]


class Branches(nn.Module):
    """Parallel stride-1 branches merged by add or concatenation; each branch keeps the size
    with explicit (possibly asymmetric) F.pad before an unpadded conv."""

    def __init__(self, channels: int, branches: list[list[dict]], merge: str) -> None:
        super().__init__()
        self.merge = merge
        self.pads = [[layer["pad"] for layer in branch] for branch in branches]
        self.branches = nn.ModuleList(
            nn.ModuleList(
                nn.Conv2d(channels, channels, layer["kernel"], dilation=layer["dilation"])
                for layer in branch
            )
            for branch in branches
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for pads, convs in zip(self.pads, self.branches, strict=True):
            y = x
            for pad, conv in zip(pads, convs, strict=True):
                y = conv(F.pad(y, pad))
            outputs.append(y)
        if self.merge == "add":
            return torch.stack(outputs).sum(0) if len(outputs) > 2 else outputs[0] + outputs[1]
        return torch.cat(outputs, dim=1)[:, : x.shape[1]] + torch.cat(outputs, 1)[:, x.shape[1] :]


class Chain(nn.Module):
    def __init__(self, blocks: list[dict], channels: int) -> None:
        super().__init__()
        self.blocks = blocks
        self.layers = nn.ModuleList()
        for block in blocks:
            kind = block["kind"]
            if kind == "conv":
                layer = nn.Conv2d(channels, channels, block["kernel"], block["stride"],
                                  block["padding"], block["dilation"])  # fmt: skip
            elif kind == "pool":
                layer = nn.AvgPool2d(block["kernel"], block["stride"], block["padding"])
            elif kind == "branches":
                layer = Branches(channels, block["branches"], block["merge"])
            elif kind == "linear":
                layer = nn.Linear(channels, channels)
            else:
                layer = nn.Identity()
            self.layers.append(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, layer in zip(self.blocks, self.layers, strict=True):
            kind = block["kind"]
            if kind == "pad":
                x = F.pad(x, block["pad"])
            elif kind == "slice":
                (top, step_h), (left, step_w) = block["slice"]
                x = x[:, :, top::step_h, left::step_w]
            elif kind == "linear":  # per position, ConvNeXt style
                x = layer(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            else:
                x = layer(x)
            x = F.relu(x)
        return x


axis_pair = st.tuples(st.integers(1, 5), st.integers(1, 5))
same_conv = st.fixed_dictionaries(
    {"kernel": axis_pair, "dilation": st.tuples(st.integers(1, 2), st.integers(1, 2))}
)


@st.composite
def branch_conv(draw: st.DrawFn) -> dict:
    layer = draw(same_conv)
    totals = [d * (k - 1) for k, d in zip(layer["kernel"], layer["dilation"], strict=True)]
    lefts = [draw(st.integers(0, t)) for t in totals]  # asymmetric split of 'same' padding
    layer["pad"] = (lefts[1], totals[1] - lefts[1], lefts[0], totals[0] - lefts[0])
    return layer


block = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("conv"),
            "kernel": axis_pair,
            "stride": st.tuples(st.integers(1, 2), st.integers(1, 2)),
            "padding": st.tuples(st.integers(0, 2), st.integers(0, 2)),
            "dilation": st.tuples(st.integers(1, 3), st.integers(1, 3)),
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
    st.fixed_dictionaries({"kind": st.just("pad"), "pad": st.tuples(*[st.integers(-1, 2)] * 4)}),
    st.fixed_dictionaries(
        {
            "kind": st.just("slice"),
            "slice": st.tuples(*[st.tuples(st.integers(0, 2), st.integers(1, 2))] * 2),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("branches"),
            "branches": st.lists(
                st.lists(branch_conv(), min_size=0, max_size=2), min_size=2, max_size=3
            ),
            "merge": st.sampled_from(["add", "cat"]),
        }
    ),
    st.fixed_dictionaries({"kind": st.just("linear")}),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    blocks=st.lists(block, min_size=1, max_size=4),
    size=st.tuples(st.integers(40, SIZE), st.integers(40, SIZE)),
)
def test_random_dags_match_the_gradient_measurement(blocks, size):
    channels = 2
    model = _positive(Chain(blocks, channels))
    try:
        summary = summarize(model, (channels, *size))
    except ShapeError:
        assume(False)
    out = summary.layers[-1]
    assert out.rf is not None and None not in out.rf
    assert out.local_rf == out.rf  # no input is broadcast: the local field is the exact one
    position = tuple(n // 2 for n in out.output_shape[2:])
    predicted = _predicted(out.rf, out.jump, out.start, position)
    assume(all(lo > 0 and hi < n - 1 for (lo, hi), n in zip(predicted, size, strict=True)))
    assert _support(model, (channels, *size), position) == predicted
    if out.output_shape[-1] > 1:  # the neighbour: shifted by exactly one jump
        neighbour = (*position[:-1], position[-1] - 1)
        shifted = _predicted(out.rf, out.jump, out.start, neighbour)
        if shifted[-1][0] > 0:
            assert _support(model, (channels, *size), neighbour) == shifted


def test_seed_003_lenet_fields_are_5_6_14_16():
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
    )  # fmt: skip
    summary = summarize(model, (1, 28, 28))
    fields = [row.rf[0] for row in summary.layers if row.type != "ReLU"]
    assert fields == [5, 6, 14, 16]


def test_seed_000_problem_2_fields_and_jumps():
    model = nn.Sequential(
        nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3), nn.MaxPool2d(2, 2), nn.Conv2d(1, 1, 3)
    )
    summary = summarize(model, (1, 32, 32))
    assert [row.rf[0] for row in summary.layers] == [3, 5, 6, 10]
    assert [row.jump[0] for row in summary.layers] == [1, 1, 2, 2]


@pytest.mark.parametrize(
    "name, size, field",
    [("vgg16", 224, 212), ("inception_v3", 299, 1311)],
)
def test_published_fields_of_classic_networks(name, size, field):
    """Araujo, Norris and Sim, "Computing Receptive Fields of CNNs", Distill 2019, Table 1."""
    kwargs = {"init_weights": False, "aux_logits": False} if name == "inception_v3" else {}
    with torch.device("meta"):
        model = getattr(torchvision_models(), name)(**kwargs)
    assert summarize(model, (3, size, size)).total.rf == (field, field)


def test_a_torchvision_resnet_prefix_matches_the_measurement():
    """torchvision's stem and layer1, max pool replaced by an average pool of the same geometry."""
    resnet = torchvision_models().resnet18()
    model = nn.Sequential(
        resnet.conv1, resnet.bn1, resnet.relu, nn.AvgPool2d(3, 2, 1), resnet.layer1
    )
    model = _positive(model)
    summary = summarize(model, (3, 96, 96))
    out = summary.layers[-1]
    assert out.rf == (43, 43) and out.jump == (4, 4)
    position = (12, 12)
    assert _support(model, (3, 96, 96), position) == _predicted(
        out.rf, out.jump, out.start, position
    )


class SqueezeExcite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y * torch.sigmoid(self.fc(y.mean((2, 3))))[:, :, None, None]


class Tokens(nn.Module):
    """Softmax attention over the flattened positions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).transpose(1, 2)
        mixed = torch.softmax(tokens @ tokens.transpose(1, 2), dim=-1) @ tokens
        return mixed.transpose(1, 2).reshape(x.shape)


@pytest.mark.parametrize(
    "model",
    [
        SqueezeExcite(),
        nn.Sequential(nn.Conv2d(2, 4, 3), nn.GroupNorm(2, 4)),
        nn.Sequential(nn.Conv2d(2, 2, 3), nn.AdaptiveAvgPool2d(1)),
        nn.Sequential(nn.Conv2d(2, 2, 3), nn.Flatten(), nn.Linear(2 * 14 * 14, 3)),
        Tokens(),
    ],
    ids=["se", "group_norm", "global_pool", "flatten_linear", "attention"],
)
def test_global_branches_make_the_field_global(model):
    model = _positive(model)
    summary = summarize(model, (2, 16, 16))
    out = summary.layers[-1]
    assert out.rf_global == (True, True) and out.rf == (16, 16)
    position = (0,) * (len(out.output_shape) - 2)
    assert _support(model, (2, 16, 16), position) == [(0, 15), (0, 15)]


def test_training_mode_batch_norm_sees_every_position():
    model = _positive(nn.Sequential(nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2)))
    assert summarize(model, (2, 12, 12), mode="train").layers[-1].rf_global == (True, True)
    assert summarize(model, (2, 12, 12)).layers[-1].rf == (3, 3)  # eval: per position


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "adaptive_avg"])
@pytest.mark.parametrize("factor", [2, 3])
def test_upsampling_field_covers_every_output_and_is_tight(mode, factor):
    """After a stride-2 conv and an upsampling, outputs see windows of varying size: the field
    is the smallest interval (relative to each output's centre) that covers them all. An
    adaptive pool to f times its input repeats each input f times: a nearest upsampling."""
    if mode == "adaptive_avg":  # the conv's output is 19 x 19
        upsample: nn.Module = nn.AdaptiveAvgPool2d(19 * factor)
    else:
        upsample = nn.Upsample(scale_factor=factor, mode=mode)
    model = _positive(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), upsample))
    summary = summarize(model, (1, 40, 40))
    out = summary.layers[-1]
    tight = [False, False]
    for i in range(6, 6 + 2 * factor):
        position = (i, i)
        predicted = _predicted(out.rf, out.jump, out.start, position)
        seen = _support(model, (1, 40, 40), position)
        for axis in range(2):
            assert predicted[axis][0] <= seen[axis][0] and seen[axis][1] <= predicted[axis][1]
            bounds = (seen[axis][0] - predicted[axis][0], predicted[axis][1] - seen[axis][1])
            tight[axis] |= bounds[0] < 1
    assert all(tight)


@pytest.mark.parametrize("size", [1, 2])
def test_an_adaptive_pool_that_spreads_a_small_map_is_followed(size):
    """VGG's classifier pool at a small input (AdaptiveAvgPool2d(7) after a 1x1 or 2x2 map):
    every output repeats one input, or (2 -> 7) averages windows of unequal reach."""
    model = _positive(nn.Sequential(nn.Conv2d(1, 1, 5, stride=4), nn.AdaptiveAvgPool2d(7)))
    shape = (1, 4 * size + 1, 4 * size + 1)
    out = summarize(model, shape).layers[-1]
    if size == 2:
        assert out.rf == (None, None)
        return
    assert out.rf is not None and None not in out.rf
    assert out.local_rf == out.rf  # a one-pixel map that sees part of the input: not cut
    for i in range(7):
        predicted = _predicted(out.rf, out.jump, out.start, (i, i))
        seen = _support(model, shape, (i, i))
        for axis in range(2):  # covered (the field, padding included, may exceed the image)
            assert predicted[axis][0] <= seen[axis][0] and seen[axis][1] <= predicted[axis][1]


def test_bicubic_upsampling_is_reported_unknown_not_guessed():
    model = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Upsample(scale_factor=2, mode="bicubic"))
    assert summarize(model, (1, 16, 16)).layers[-1].rf == (None, None)
