"""Pooling output sizes (floor and ceil mode) and adaptive windows against PyTorch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.arith import adaptive_pool_output_size, adaptive_pool_windows, pool_output_size
from cnnkit.errors import CnnkitError, ConfigError, ShapeError
from tests.arith import torch_oracle
from tests.arith.strategies import MAX_SIZE, as_argument, per_axis, pool_configs


def arith_or_none(**kwargs):
    try:
        return pool_output_size(**kwargs)
    except CnnkitError:
        return None


@settings(max_examples=700)
@given(pool_configs(), st.booleans(), st.booleans(), st.data())
def test_max_pool_output_size_matches_pytorch(config, ceil_mode, default_stride, data):
    stride = None if default_stride else config["stride"]
    expected = torch_oracle.max_pool_shape(
        config["input_size"],
        config["kernel_size"],
        stride if stride is not None else config["kernel_size"],
        config["padding"],
        config["dilation"],
        ceil_mode,
    )
    arguments = {
        "input_size": config["input_size"],
        "kernel_size": as_argument(data.draw, config["kernel_size"]),
        "stride": stride,
        "padding": as_argument(data.draw, config["padding"]),
        "dilation": as_argument(data.draw, config["dilation"]),
        "ceil_mode": ceil_mode,
    }
    assert arith_or_none(**arguments) == expected


@settings(max_examples=500)
@given(pool_configs(), st.booleans())
def test_avg_pool_output_size_matches_pytorch(config, ceil_mode):
    config = {**config, "dilation": (1,) * len(config["input_size"])}  # AvgPool has none
    expected = torch_oracle.avg_pool_shape(
        config["input_size"], config["kernel_size"], config["stride"], config["padding"], ceil_mode
    )
    assert arith_or_none(**config, ceil_mode=ceil_mode, kind="avg") == expected


def test_ceil_mode_drops_a_window_that_would_start_in_the_padding():
    # ceil((6 + 2 - 2)/2) + 1 = 4 windows start at -1, 1, 3, 5: all inside input + left pad
    assert pool_output_size(6, 2, 2, padding=1, ceil_mode=True) == (4,)
    # ceil((5 + 2 - 2)/2) + 1 = 4, but the 4th window would start at 6 >= 5 + 1: dropped
    assert pool_output_size(5, 2, 2, padding=1, ceil_mode=True) == (3,)
    assert torch_oracle.max_pool_shape((5,), (2,), (2,), (1,), (1,), True) == (3,)


def test_seed_000_maxpool_3x3_stride_2_on_112_gives_55():
    assert pool_output_size((112, 112), 3, 2) == (55, 55)


def test_avg_pool_refuses_dilation_and_a_3d_input_smaller_than_the_kernel():
    with pytest.raises(ConfigError, match="no dilation"):
        pool_output_size(8, 2, dilation=2, kind="avg")
    with pytest.raises(ShapeError, match="smaller than the kernel 4 on axis H"):
        pool_output_size((3, 3, 3), (1, 4, 1), 1, padding=(0, 2, 0), kind="avg")
    assert torch_oracle.avg_pool_shape((3, 3, 3), (1, 4, 1), (1, 1, 1), (0, 2, 0), False) is None
    assert pool_output_size((3, 3, 3), (1, 4, 1), 1, padding=(0, 2, 0)) == (3, 4, 3)


def test_pool_padding_above_half_the_kernel_is_refused():
    with pytest.raises(ConfigError, match="at most half the kernel size on axis H"):
        pool_output_size((9, 9), 3, 1, padding=2)


def test_pool_empty_output_names_the_axis():
    with pytest.raises(ShapeError, match="output size would be 0 on axis H"):
        pool_output_size((2, 9), 3, 1)


@st.composite
def adaptive_configs(draw):
    ndim = draw(st.integers(1, 3))
    sizes = per_axis(draw, ndim, 1, MAX_SIZE[ndim])
    outputs = per_axis(draw, ndim, 1, MAX_SIZE[ndim] + 3)  # larger than the input too
    return sizes, outputs


ADAPTIVE_MAX = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}


@settings(max_examples=300)
@given(adaptive_configs())
def test_adaptive_windows_match_pytorch_argmax(config):
    """On an increasing ramp the max of a window is its last element, on a decreasing one its
    first: adaptive_max_pool's indices give each window's [start, end) per axis."""
    sizes, outputs = config
    windows = adaptive_pool_windows(sizes, outputs)
    ndim = len(sizes)
    for axis in range(ndim):
        shape = [1] * ndim
        shape[axis] = sizes[axis]
        ramp = torch.arange(sizes[axis], dtype=torch.float64).reshape(shape)
        ramp = ramp.expand(*sizes).contiguous()[None, None]
        pool = ADAPTIVE_MAX[ndim]
        _, last = pool(ramp, outputs, return_indices=True)
        _, first = pool(-ramp, outputs, return_indices=True)
        stride = ramp[0, 0].stride(axis)
        # the index is flat over the spatial axes: recover this axis's coordinate
        last_along = (last.flatten(2)[0, 0] // stride) % sizes[axis]
        first_along = (first.flatten(2)[0, 0] // stride) % sizes[axis]
        out_index = torch.arange(last.flatten(2).shape[-1])
        along = (out_index // last[0, 0].stride(axis)) % outputs[axis]
        for flat, position in enumerate(along.tolist()):
            start, end = windows[axis][position]
            assert first_along[flat].item() == start
            assert last_along[flat].item() == end - 1
    assert adaptive_pool_output_size(sizes, outputs) == tuple(
        F.adaptive_avg_pool3d(
            torch.zeros(1, 1, *sizes, *[1] * (3 - ndim)), (*outputs, *[1] * (3 - ndim))
        ).shape[2 : 2 + ndim]
    )


def test_adaptive_windows_overlap_when_sizes_do_not_divide():
    assert adaptive_pool_windows(5, 3) == (((0, 2), (1, 4), (3, 5)),)
    assert adaptive_pool_windows(7, 0) == ((),)  # PyTorch returns an empty tensor
    with pytest.raises(ShapeError):
        adaptive_pool_windows(0, 2)
    with pytest.raises(ConfigError):
        adaptive_pool_windows(4, -1)
