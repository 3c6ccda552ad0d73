"""SqueezeExcitation: output = input * gate, the gate computed from the channel means.

Oracles: the block's equation written with torch.nn.functional ops on its own weights (float64),
autograd's gradcheck, and torchvision's ``SqueezeExcitation`` (names and outputs).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from cnnkit.errors import ConfigError
from cnnkit.nn import SqueezeExcitation
from tests.oracles import torchvision_models


@settings(max_examples=30)
@given(
    channels=st.integers(1, 12),
    squeeze=st.integers(1, 6),
    batch=st.integers(1, 3),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
)
def test_output_is_input_times_a_gate_in_zero_one(channels, squeeze, batch, height, width):
    block = SqueezeExcitation(channels, squeeze).double()
    x = torch.randn(batch, channels, height, width, dtype=torch.float64)
    hidden = F.relu(F.conv2d(x.mean((2, 3), keepdim=True), block.fc1.weight, block.fc1.bias))
    gate = torch.sigmoid(F.conv2d(hidden, block.fc2.weight, block.fc2.bias))
    assert gate.shape == (batch, channels, 1, 1)
    assert ((gate > 0) & (gate < 1)).all()
    torch.testing.assert_close(block.gate(x), gate)
    torch.testing.assert_close(block(x), x * gate)


def test_hard_sigmoid_gate_stays_in_zero_one():
    block = SqueezeExcitation(8, 4, scale_activation=nn.Hardsigmoid)
    x = 10 * torch.randn(3, 8, 4, 4)
    gate = block.gate(x)
    assert ((gate >= 0) & (gate <= 1)).all()
    torch.testing.assert_close(block(x), x * gate)


def test_parameter_count_is_two_1x1_convs_with_bias():
    block = SqueezeExcitation(96, 24)
    assert sum(p.numel() for p in block.parameters()) == 2 * 96 * 24 + 24 + 96


def test_gradients_match_finite_differences():
    block = SqueezeExcitation(4, 2).double()
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))


def test_names_and_outputs_equal_torchvision_squeeze_excitation():
    torchvision_models()  # skips when the oracle is not installed
    from torchvision.ops.misc import SqueezeExcitation as Theirs

    theirs = Theirs(16, 4, activation=nn.SiLU)
    mine = SqueezeExcitation(16, 4, activation=nn.SiLU)
    mine.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(mine(x), theirs(x))


@pytest.mark.parametrize(
    ("channels", "squeeze", "named"), [(0, 4, "input_channels"), (8, 0, "squeeze_channels")]
)
def test_bad_widths_are_config_errors(channels, squeeze, named):
    with pytest.raises(ConfigError, match=named):
        SqueezeExcitation(channels, squeeze)
