"""Winograd F(2x2, 3x3): the multiply saving, counted by torch.utils.flop_counter."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.reference import conv2d, winograd_multiply_count


def _counted_macs(function) -> int:
    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops() // 2


@settings(max_examples=25)
@given(
    size=st.tuples(st.integers(3, 12), st.integers(3, 12)), padding=st.integers(0, 2),
    groups=st.integers(1, 2), in_per_group=st.integers(1, 3), out_per_group=st.integers(1, 3),
    batch=st.integers(1, 2),
)  # fmt: skip
def test_multiply_count_equals_flop_counter(size, padding, groups, in_per_group, out_per_group,
                                            batch):  # fmt: skip
    in_channels, out_channels = groups * in_per_group, groups * out_per_group
    x = torch.randn(batch, in_channels, *size)
    weight = torch.randn(out_channels, in_per_group, 3, 3)
    output_size = F.conv2d(x, weight, padding=padding, groups=groups).shape[-2:]
    count = winograd_multiply_count(tuple(output_size), in_channels, out_channels, groups, batch)
    # The oracle: PyTorch's own FLOP counter on torch's conv and on the Winograd implementation
    # (whose transforms are additions, so only its 16 GEMMs are counted).
    assert count.direct == _counted_macs(lambda: F.conv2d(x, weight, padding=padding,
                                                           groups=groups))  # fmt: skip
    assert count.winograd == _counted_macs(
        lambda: conv2d(x, weight, padding=padding, groups=groups, method="winograd")
    )


def test_saving_is_36_over_16_for_even_outputs():
    count = winograd_multiply_count((56, 56), in_channels=64, out_channels=64)
    assert count.ratio == pytest.approx(36 / 16) == 2.25
    assert count.tiles == 28 * 28
    odd = winograd_multiply_count((7, 7), in_channels=512, out_channels=512)
    assert odd.ratio == pytest.approx(49 * 9 / (16 * 16))  # 4x4 tiles for a 7x7 output
