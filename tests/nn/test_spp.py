"""SpatialPyramidPooling: fixed-length output for any input size, levels as plain pooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import ConfigError, ShapeError
from cnnkit.nn import SpatialPyramidPooling


@settings(max_examples=30)
@given(h=st.integers(1, 20), w=st.integers(1, 20), c=st.integers(1, 4))
def test_output_length_does_not_depend_on_the_input_size(h, w, c):
    spp = SpatialPyramidPooling((1, 2, 4))
    out = spp(torch.randn(2, c, h, w))
    assert out.shape == (2, c * (1 + 4 + 16)) == (2, spp.output_features(c))


def test_seed_001_figure():
    # 001: 256 channels, levels (1, 2, 4) -> 256 * 21 = 5376
    assert SpatialPyramidPooling((1, 2, 4), mode="avg")(torch.randn(2, 256, 13, 13)).shape == (
        2,
        5376,
    )


@settings(max_examples=30)
@given(level=st.integers(1, 4), cell=st.integers(1, 4), mode=st.sampled_from(["max", "avg"]))
def test_divisible_sizes_equal_plain_pooling(level, cell, mode):
    """When H = W = level * cell the adaptive windows are plain cell x cell pools."""
    x = torch.randn(2, 3, level * cell, level * cell)
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    expected = pool(x, cell).flatten(1)
    out = SpatialPyramidPooling((level,), mode)(x)
    torch.testing.assert_close(out, expected)


def test_levels_are_concatenated_in_order():
    x = torch.randn(1, 2, 4, 4)
    out = SpatialPyramidPooling((1, 2))(x)
    torch.testing.assert_close(out[:, :2], x.amax(dim=(2, 3)))


def test_bad_arguments():
    with pytest.raises(ConfigError, match="levels"):
        SpatialPyramidPooling((1, 0))
    with pytest.raises(ConfigError, match="mode"):
        SpatialPyramidPooling(mode="sum")
    with pytest.raises(ShapeError):
        SpatialPyramidPooling()(torch.randn(3, 4, 4))
