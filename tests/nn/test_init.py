"""Kaiming with group-aware fans (002) against PyTorch's fan convention and measured spreads."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.nn import conv_fans, kaiming_normal_, kaiming_uniform_
from cnnkit.nn.init import init_kaiming_fan_out_, kaiming_std


@given(
    groups=st.integers(1, 4),
    per_group_in=st.integers(1, 4),
    per_group_out=st.integers(1, 4),
    k=st.integers(1, 5),
)
def test_fans_are_002s_and_match_pytorch_when_groups_is_one(groups, per_group_in, per_group_out, k):
    conv = nn.Conv2d(groups * per_group_in, groups * per_group_out, k, groups=groups)
    fan_in, fan_out = conv_fans(conv.weight, groups)
    assert fan_in == per_group_in * k * k  # (C_in / g) k^2
    assert fan_out == per_group_out * k * k  # (C_out / g) k^2
    torch_fans = nn.init._calculate_fan_in_and_fan_out(conv.weight)
    assert conv_fans(conv.weight) == torch_fans  # groups=1: PyTorch's convention
    assert torch_fans[1] == fan_out * groups


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("groups", [1, 8])
def test_measured_spread_matches_the_formula(mode, groups):
    torch.manual_seed(0)
    weight = torch.empty(256, 256 // groups, 3, 3)
    fan_in, fan_out = conv_fans(weight, groups)
    expected = math.sqrt(2.0 / (fan_in if mode == "fan_in" else fan_out))
    kaiming_normal_(weight, mode=mode, groups=groups)
    assert float(weight.std()) == pytest.approx(expected, rel=0.01)
    kaiming_uniform_(weight, mode=mode, groups=groups)
    assert float(weight.std()) == pytest.approx(expected, rel=0.01)
    assert float(weight.abs().max()) <= math.sqrt(3) * expected


def test_same_distribution_as_pytorch_kaiming_with_groups_one():
    weight = torch.empty(128, 64, 3, 3)
    torch.manual_seed(1)
    nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
    reference = weight.clone()
    torch.manual_seed(1)
    kaiming_normal_(weight, mode="fan_out")
    torch.testing.assert_close(weight, reference)


def test_family_helper_sets_norms_and_linears():
    model = nn.Sequential(nn.Conv2d(3, 64, 3), nn.BatchNorm2d(64), nn.Flatten(), nn.Linear(4, 2))
    nn.init.constant_(model[1].weight, 5.0)
    init_kaiming_fan_out_(model, linear_std=0.01)
    assert torch.all(model[1].weight == 1) and torch.all(model[1].bias == 0)
    assert torch.all(model[0].bias == 0) and torch.all(model[3].bias == 0)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="groups"):
        conv_fans(torch.empty(6, 2, 3, 3), groups=4)
    with pytest.raises(ConfigError, match="mode"):
        kaiming_std(torch.empty(4, 4), mode="fan_avg")
