"""Worked problems: their numbers vs PyTorch, their written arithmetic, the seeds' figures."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.arith import worked
from cnnkit.arith.layer_spec import parse_layers
from cnnkit.arith.worked_compare import worked_compare_conv_types, worked_stacked_kernels
from cnnkit.errors import CnnkitError
from tests.arith import torch_oracle
from tests.arith.measured_field import forward, measured_bounds, sequential_layers
from tests.arith.step_arithmetic import checked_chains
from tests.arith.strategies import conv_configs, pool_configs, transpose_configs

CONV_MODULES = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


@settings(max_examples=150)
@given(conv_configs(), st.integers(1, 3), st.integers(1, 3), st.booleans())
def test_worked_conv_matches_pytorch_and_its_arithmetic_adds_up(config, cin, cout, bias):
    try:
        problem = worked.worked_conv(**config, in_channels=cin, out_channels=cout, bias=bias)
    except CnnkitError:
        assert torch_oracle.conv_shape(*config.values()) is None
        return
    assert problem.result["output_size"] == torch_oracle.conv_shape(*config.values())
    ndim = len(config["input_size"])
    module = CONV_MODULES[ndim](cin, cout, config["kernel_size"], bias=bias, device="meta")
    assert problem.result["params"] == sum(p.numel() for p in module.parameters())
    x = torch.empty(1, cin, *config["input_size"], device="meta")
    w = torch.empty(cout, cin, *config["kernel_size"], device="meta")
    conv = torch_oracle.CONV[ndim]
    with FlopCounterMode(display=False) as counter:
        conv(x, w, None, config["stride"], config["padding"], config["dilation"])
    assert problem.result["macs"] == counter.get_total_flops() // 2
    assert checked_chains(problem.steps) >= 2


@settings(max_examples=150)
@given(pool_configs(), st.booleans())
def test_worked_pool_matches_pytorch(config, ceil_mode):
    expected = torch_oracle.max_pool_shape(*config.values(), ceil_mode)
    try:
        problem = worked.worked_pool(**config, ceil_mode=ceil_mode)
    except CnnkitError:
        assert expected is None
        return
    assert problem.result["output_size"] == expected
    assert checked_chains(problem.steps) >= 1


@settings(max_examples=150)
@given(transpose_configs())
def test_worked_transpose_matches_pytorch(config):
    expected = torch_oracle.conv_transpose_shape(*config.values())
    try:
        problem = worked.worked_transpose(**config, in_channels=2, out_channels=4, groups=2)
    except CnnkitError:
        assert expected is None
        return
    assert problem.result["output_size"] == expected
    modules = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
    module = modules[len(expected)](2, 4, config["kernel_size"], groups=2, device="meta")
    assert problem.result["params"] == sum(p.numel() for p in module.parameters())
    assert checked_chains(problem.steps) >= 3


@settings(max_examples=100)
@given(sequential_layers(ndim=1, depth=4))
def test_worked_receptive_field_matches_the_measured_field(layers):
    problem = worked.worked_receptive_field(layers)
    assert checked_chains(problem.steps) >= 3 * len(layers)
    rf, jump = problem.result["rf"][-1], problem.result["jump"][-1]
    start = problem.result["start"][-1]
    size = int(2 * rf + 8 * jump + 2 * abs(start)) + 8
    x, y = forward(layers, (size,))
    position = y.shape[-1] // 2
    centre = start + position * jump
    assert measured_bounds(x, y, (position,)) == [(centre - rf / 2, centre + rf / 2)]


@settings(max_examples=60)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(4, 12))
def test_worked_im2col_matches_unfold(batch, channels, kernel, size):
    assume(size >= kernel)
    problem = worked.worked_im2col(batch, channels, (kernel, kernel), (size, size), padding=1)
    patches = F.unfold(torch.zeros(batch, channels, size, size), kernel, padding=1)
    assert problem.result["elements"] == patches.numel()
    assert problem.result["bytes"] == patches.numel() * 4
    assert checked_chains(problem.steps) >= 2


def test_worked_params_macs_and_comparisons_add_up():
    for problem in (
        worked.worked_params(64, 128, (3, 3), groups=4),
        worked.worked_macs(64, 128, 3, (56, 56)),
        worked_compare_conv_types(64, 128, 3, 8),
        worked_stacked_kernels(2, channels=8, output_size=(4, 4)),
    ):
        assert checked_chains(problem.steps) >= 1
        assert problem.to_dict()["steps"] == problem.steps
    assert worked.worked_params(64, 128, (3, 3), groups=4).result["params"] == sum(
        p.numel() for p in nn.Conv2d(64, 128, 3, groups=4).parameters()
    )


def test_seed_problems_give_the_reference_figures():
    """docs/reference-figures.md, "Figures from the seeds, checked"."""
    problems = {p.source: p for p in worked.seed_problems()}
    first = problems["000 §6 problem 1"].result
    assert first == {"conv_output": (112, 112), "params": 9_472, "pool_output": (55, 55)}
    conv = nn.Conv2d(3, 64, 7, stride=2, padding=3, device="meta")
    y = conv(torch.empty(1, 3, 224, 224, device="meta"))
    assert tuple(y.shape[2:]) == (112, 112) and sum(p.numel() for p in conv.parameters()) == 9_472
    assert tuple(F.max_pool2d(y, 3, 2).shape[2:]) == (55, 55)

    second = problems["000 §6 problem 2"].result
    assert (second["rf"], second["jump"]) == ([3, 5, 6, 10], [1, 1, 2, 2])

    third = problems["000 §6 problem 3"]
    with FlopCounterMode(display=False) as counter:
        nn.Conv2d(64, 128, 3, padding=1, device="meta")(torch.empty(1, 64, 56, 56, device="meta"))
    assert third.result["macs"] == counter.get_total_flops() // 2 == 231_211_008
    assert "231M" in third.note

    bill = problems["002 im2col Memory Bill"].result
    assert (bill["elements"], bill["bytes"]) == (924_844_032, 1_849_688_064)

    lenet = problems["003 §4.1"].result["rf"]
    assert lenet == [5, 6, 14, 16]
    layers = parse_layers("k5p2,poolk2s2,k5,poolk2s2")
    x, y = forward(layers, (28,))  # LeNet's own input size: the central output sees 16 pixels
    ((left, right),) = measured_bounds(x, y, (2,))
    assert right - left == 16

    assert problems["000 §2.3"].result["rf"] == [3, 4, 8]
    for problem in problems.values():
        assert checked_chains(problem.steps) >= 1, problem.title
        assert problem.text().startswith(problem.title)
