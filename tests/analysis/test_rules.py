"""Per-op rules: closed forms for other FLOPs (fvcore's style), MACs vs FlopCounterMode,
registry coverage, unsupported ops reported (never a silent zero), user rules."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.analysis import OpFigures, register_rule, summarize
from cnnkit.analysis.rules import RULES, find_rule
from cnnkit.analysis.spatial import Window
from cnnkit.errors import ConfigError

aten = torch.ops.aten
X = (2, 3, 8, 8)


class Apply(nn.Module):
    """Calls ``fn(self, x)``; holds a few parameters a function may use."""

    def __init__(self, fn: Callable) -> None:
        super().__init__()
        self.fn = fn
        self.weight = nn.Parameter(torch.rand(4, 3, 3, 3))
        self.bias = nn.Parameter(torch.rand(4))
        self.matrix = nn.Parameter(torch.rand(5, 3 * 8 * 8))
        self.register_buffer("mean", torch.zeros(3))
        self.register_buffer("var", torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, x)


def _adaptive_window_elements(output_size: int) -> int:
    """Measured: the inputs each adaptive-average output reads (non-zero Jacobian entries)."""
    x = torch.rand(X)
    jacobian = torch.autograd.functional.jacobian(
        lambda t: F.adaptive_avg_pool2d(t, output_size), x
    )
    return int((jacobian != 0).sum())


def _must_run_for_real(x: torch.Tensor) -> torch.Tensor:
    return x if x.sum() > float("-inf") else -x


@dataclass
class Sample:
    name: str
    fn: Callable
    flops: Callable[[int, int], int]  # (input numel, output numel) -> other FLOPs
    shape: tuple[int, ...] = X
    mode: str = "eval"


def _fold_additions(ones: torch.Tensor) -> int:
    """Additions of F.fold((8, 8), 3, dilation 2, padding 1): F.fold of ones counts the windows
    over each position, which sums them with one addition fewer."""
    return int((F.fold(ones, (8, 8), 3, 2, 1) - 1).clamp(min=0).sum())


def _n(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


SAMPLES = [
    Sample("relu", lambda m, x: F.relu(x), lambda i, o: o),
    Sample("addcmul", lambda m, x: torch.addcmul(x, x, x), lambda i, o: 2 * o),
    Sample("conv_bias", lambda m, x: F.conv2d(x, m.weight, m.bias), lambda i, o: o),
    Sample("linear_bias", lambda m, x: F.linear(x.flatten(1), m.matrix, None) + 1, lambda i, o: o),
    Sample("addmm", lambda m, x: torch.addmm(x[0, 0], x[0, 1], x[0, 2]), lambda i, o: o),
    Sample("bmm", lambda m, x: x.flatten(2) @ x.flatten(2).transpose(1, 2), lambda i, o: 0),
    Sample(
        "batch_norm_eval",
        lambda m, x: F.batch_norm(x, m.mean, m.var, training=False),
        lambda i, o: 2 * o,
    ),
    Sample(
        "batch_norm_train",
        lambda m, x: F.batch_norm(x, m.mean.clone(), m.var.clone(), training=True),
        lambda i, o: 6 * o,
        mode="train",
    ),
    Sample(
        "batch_norm_no_training",
        lambda m, x: aten._native_batch_norm_legit_no_training(
            x, None, None, m.mean, m.var, 0.1, 1e-5
        )[0],
        lambda i, o: 2 * o,
    ),
    Sample("layer_norm", lambda m, x: F.layer_norm(x, (8,)), lambda i, o: 6 * o),
    Sample("group_norm", lambda m, x: F.group_norm(x, 3), lambda i, o: 6 * o),
    Sample("max_pool", lambda m, x: F.max_pool2d(x, 3, 2), lambda i, o: 9 * o),
    Sample("avg_pool", lambda m, x: F.avg_pool2d(x, (2, 3), 1, (1, 1)), lambda i, o: 6 * o),
    Sample(
        "adaptive_avg",
        lambda m, x: F.adaptive_avg_pool2d(x, 3),
        lambda i, o: _adaptive_window_elements(3),
    ),
    Sample(
        "adaptive_max",
        lambda m, x: F.adaptive_max_pool2d(x, 5),
        lambda i, o: _adaptive_window_elements(5),
    ),
    Sample("mean", lambda m, x: x.mean((2, 3)), lambda i, o: i),
    Sample("max_of_two", lambda m, x: aten.max.other(x, x), lambda i, o: o),
    Sample("softmax", lambda m, x: F.softmax(x, 1), lambda i, o: 3 * o),
    Sample("nearest", lambda m, x: F.interpolate(x, scale_factor=2), lambda i, o: 0),
    Sample(
        "bilinear",
        lambda m, x: F.interpolate(x, scale_factor=2, mode="bilinear"),
        lambda i, o: 8 * o,
    ),
    Sample("pixel_shuffle", lambda m, x: F.pixel_shuffle(x, 2), lambda i, o: 0, (2, 4, 8, 8)),
    Sample("pixel_unshuffle", lambda m, x: F.pixel_unshuffle(x, 2), lambda i, o: 0),
    Sample("flatten", lambda m, x: x.flatten(1), lambda i, o: 0),
    Sample("clone", lambda m, x: x.clone(), lambda i, o: 0),
    Sample("unfold", lambda m, x: x.unfold(2, 3, 1), lambda i, o: 0),
    Sample("im2col", lambda m, x: F.unfold(x, 3, padding=1, stride=2), lambda i, o: 0),
    Sample(
        "col2im",  # F.fold sums the windows over each position: (cover - 1) additions; batch 2
        lambda m, x: F.fold(F.unfold(x, 3, padding=1, dilation=2), (8, 8), 3, 2, 1),
        lambda i, o: 2 * int(_fold_additions(torch.ones(1, 27, 36))),
    ),
    Sample("diagonal", lambda m, x: x.diagonal(0, 2, 3), lambda i, o: 0),
    Sample("permute", lambda m, x: x.permute(0, 2, 3, 1), lambda i, o: 0),
    Sample("transpose", lambda m, x: x.transpose(1, 2), lambda i, o: 0),
    Sample("slice", lambda m, x: x[:, :, 1:], lambda i, o: 0),
    Sample("select", lambda m, x: x[:, :, 0], lambda i, o: 0),
    Sample("cat", lambda m, x: torch.cat([x, x], 1), lambda i, o: 0),
    Sample("split", lambda m, x: x.chunk(3, 1)[1], lambda i, o: 0),
    Sample("unsafe_split", lambda m, x: x.unsafe_split(3, 1)[0], lambda i, o: 0),
    Sample("transpose_", lambda m, x: x.clone().transpose_(1, 2), lambda i, o: 0),
    Sample("unbind", lambda m, x: x.unbind(1)[2], lambda i, o: 0),
    Sample("pad", lambda m, x: F.pad(x, (1, 2, 0, 1)), lambda i, o: 0),
    Sample("roll", lambda m, x: x.roll(1, 2), lambda i, o: 0),
    Sample("repeat", lambda m, x: x.repeat(1, 2, 1, 1), lambda i, o: 0),
    Sample("zeros_like", lambda m, x: torch.zeros_like(x) + x, lambda i, o: o),
    Sample(
        "attention",
        lambda m, x: F.scaled_dot_product_attention(*[_must_run_for_real(x)] * 3),
        lambda i, o: i + 1 + 3 * 2 * 3 * 8 * 8,  # the sum and > of the branch, the softmax
    ),
]


def _figures(sample: Sample):
    model = Apply(sample.fn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unsupported op would warn
        summary = summarize(model, sample.shape[1:], batch_size=sample.shape[0], mode=sample.mode)
    return model, summary


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_other_flops_follow_the_documented_conventions(sample):
    model, summary = _figures(sample)
    out = summary.layers[-1].output_shape
    assert summary.total.other_flops == sample.flops(_n(sample.shape), _n(out))
    assert not summary.unsupported
    meta = copy.deepcopy(model).to("meta")
    if sample.name == "attention":
        return  # MACs of fused attention: tests/analysis/test_vs_flop_counter.py
    with FlopCounterMode(display=False) as counter:
        meta.train(sample.mode == "train")(torch.empty(sample.shape, device="meta"))
    assert 2 * summary.total.macs == counter.get_total_flops()


def test_every_registered_rule_is_exercised_by_a_sample():
    exercised = set()
    for sample in SAMPLES:
        _, summary = _figures(sample)
        exercised |= {find_rule(node.op) for node in summary.graph.nodes[1:]}
    registered = {rule for _, rule in RULES.items()}
    assert registered - exercised == set()


def test_an_op_without_a_rule_is_listed_and_warned_not_zero():
    model = Apply(lambda m, x: torch.lgamma(F.conv2d(x, m.weight)))
    with pytest.warns(UserWarning, match=r"aten\.lgamma"):
        summary = summarize(model, X[1:])
    assert summary.unsupported == {"aten.lgamma": 1}
    assert summary.layers[-1].unsupported == ("lgamma",)
    assert summary.layers[-1].rf == (None, None)  # no rule: no field either


def test_register_rule_extends_and_refuses_duplicates():
    @register_rule(aten.lgamma)
    def lgamma(node):
        return OpFigures(other_flops=7 * math.prod(node.output_shape))

    try:
        summary = summarize(Apply(lambda m, x: torch.lgamma(x)), X[1:])
        assert summary.total.other_flops == 7 * _n(X[1:]) and not summary.unsupported
        with pytest.raises(ValueError, match="already registered"):
            register_rule(aten.lgamma)(lgamma)
        register_rule("aten.lgamma", override=True)(lambda node: OpFigures(other_flops=1))
        assert summarize(Apply(lambda m, x: torch.lgamma(x)), X[1:]).total.other_flops == 1
    finally:
        RULES.remove(aten.lgamma)


def test_a_per_call_rule_overrides_the_registry_once():
    model = Apply(lambda m, x: F.relu(x))
    summary = summarize(model, X[1:], rules={aten.relu: lambda node: OpFigures(other_flops=5)})
    assert summary.total.other_flops == 5
    assert summarize(model, X[1:]).total.other_flops == _n(X[1:])


class Opaque(nn.Module):
    """A module the user wants counted as one leaf, whatever it does inside."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.lgamma(self.conv(x)).exp()  # lgamma has no rule: hidden inside the leaf


def test_a_module_keyed_rule_makes_the_module_one_opaque_leaf():
    def opaque(node):
        assert isinstance(node.module, Opaque)
        return OpFigures(macs=11, spatial=Window((5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1)))

    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), Opaque())
    summary = summarize(model, X[1:], rules={Opaque: opaque})
    assert [row.name for row in summary.layers] == ["0", "1"]
    assert summary.layers[1].type == "Opaque" and summary.layers[1].macs == 11
    assert summary.layers[1].params == sum(p.numel() for p in model[1].parameters())
    assert summary.layers[1].rf == (7, 7)  # 3x3 then the rule's 5x5 window
    assert not summary.unsupported


@pytest.mark.parametrize("key", [int, "aten.no_such_op", 3, "nonsense"])
def test_bad_rule_keys_are_config_errors(key):
    with pytest.raises(ConfigError):
        register_rule(key)


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU, nn.RNN])
def test_recurrent_layers_count_their_gates_without_unsupported_ops(cell):
    """MACs of a recurrent layer: per step and layer, gates x hidden x (input + hidden), the
    formula of PyTorch's nn.LSTM/GRU/RNN docs (4, 3 and 1 gates). CPU FlopCounterMode counts 0
    for the LSTM (mkldnn_rnn_layer has no formula): see docs/analysis.md."""
    gates = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}[cell]
    steps, features, hidden, layers = 5, 8, 16, 2
    model = cell(features, hidden, num_layers=layers, batch_first=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unsupported op would warn
        summary = summarize(model, (steps, features))
    expected = steps * gates * hidden * ((features + hidden) + (hidden + hidden))
    assert summary.total.macs == expected
    assert summary.total.params == sum(p.numel() for p in model.parameters())
    assert not summary.unsupported
