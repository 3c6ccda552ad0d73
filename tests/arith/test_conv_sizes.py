"""Convolution output sizes against the shapes PyTorch produces, valid and invalid configs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.arith import (
    conv_output_size,
    d2l_output_size,
    effective_kernel_size,
    padding_pairs,
    same_padding,
)
from cnnkit.errors import CnnkitError, ConfigError, ShapeError
from tests.arith import torch_oracle
from tests.arith.strategies import MAX_SIZE, as_argument, conv_configs, per_axis


def arith_or_none(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except CnnkitError:
        return None


@settings(max_examples=600)
@given(conv_configs(), st.data())
def test_conv_output_size_matches_pytorch(config, data):
    expected = torch_oracle.conv_shape(
        config["input_size"],
        config["kernel_size"],
        config["stride"],
        config["padding"],
        config["dilation"],
    )
    arguments = {name: as_argument(data.draw, value) for name, value in config.items()}
    if len(config["input_size"]) > 1:  # ints broadcast only when some argument fixes ndim
        arguments["input_size"] = config["input_size"]
    assert arith_or_none(conv_output_size, **arguments) == expected


@st.composite
def string_padding_configs(draw):
    ndim = draw(st.integers(1, 3))
    return {
        "input_size": per_axis(draw, ndim, 1, MAX_SIZE[ndim]),
        "kernel_size": per_axis(draw, ndim, 1, 6),
        "stride": per_axis(draw, ndim, 1, 2),
        "padding": draw(st.sampled_from(["same", "valid"])),
        "dilation": per_axis(draw, ndim, 1, 3),
    }


@settings(max_examples=300)
@given(string_padding_configs())
def test_same_and_valid_padding_match_pytorch(config):
    """'same' keeps the size (refused for stride > 1, like PyTorch); 'valid' is padding 0."""
    expected = torch_oracle.conv_shape(*config.values())
    assert arith_or_none(conv_output_size, **config) == expected


@st.composite
def asymmetric_configs(draw):
    ndim = draw(st.integers(1, 3))
    pairs = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(ndim))
    return {
        "input_size": per_axis(draw, ndim, 1, MAX_SIZE[ndim]),
        "kernel_size": per_axis(draw, ndim, 1, 5),
        "stride": per_axis(draw, ndim, 1, 3),
        "padding": pairs,
        "dilation": per_axis(draw, ndim, 1, 2),
    }


@settings(max_examples=300)
@given(asymmetric_configs())
def test_asymmetric_padding_matches_f_pad_then_conv(config):
    expected = torch_oracle.conv_shape(*config.values())
    assert arith_or_none(conv_output_size, **config) == expected


@st.composite
def same_padding_configs(draw):
    ndim = draw(st.integers(1, 3))
    return (
        per_axis(draw, ndim, 1, MAX_SIZE[ndim]),
        per_axis(draw, ndim, 1, 6),
        per_axis(draw, ndim, 1, 4),
        per_axis(draw, ndim, 1, 3),
    )


@settings(max_examples=300)
@given(same_padding_configs())
def test_same_padding_gives_ceil_size_with_the_least_padding(config):
    """TF 'same': F.pad(before, after) then conv gives ceil(n/s); one pixel less gives less."""
    sizes, kernel, stride, dilation = config
    pairs = same_padding(sizes, kernel, stride, dilation)
    assert torch_oracle.conv_shape(sizes, kernel, stride, pairs, dilation) == tuple(
        -(-n // s) for n, s in zip(sizes, stride, strict=True)
    )
    for axis, (before, after) in enumerate(pairs):
        assert after - before in (0, 1)  # the extra pixel goes after
        if before + after:
            fewer = list(pairs)
            fewer[axis] = (before, after - 1) if after else (before - 1, after)
            smaller = torch_oracle.conv_shape(sizes, kernel, stride, tuple(fewer), dilation)
            assert smaller is None or smaller[axis] < -(-sizes[axis] // stride[axis])


@settings(max_examples=200)
@given(same_padding_configs())
def test_same_padding_at_stride_one_is_pytorch_padding_same(config):
    sizes, kernel, _, dilation = config
    assert same_padding(sizes, kernel, 1, dilation) == padding_pairs("same", kernel, 1, dilation)
    assert torch_oracle.conv_shape(sizes, kernel, 1, "same", dilation) == tuple(sizes)


@st.composite
def d2l_configs(draw):
    ndim = draw(st.integers(1, 2))
    return (
        per_axis(draw, ndim, 1, MAX_SIZE[ndim]),
        per_axis(draw, ndim, 1, 5),
        per_axis(draw, ndim, 0, 6),
        per_axis(draw, ndim, 1, 4),
    )


@settings(max_examples=300)
@given(d2l_configs())
def test_d2l_total_padding_convention_matches_pytorch(config):
    """Seed 004: floor((n - k + p + s)/s) with p the total padding, split any way by F.pad."""
    sizes, kernel, totals, stride = config
    pairs = tuple((p // 2, p - p // 2) for p in totals)
    expected = torch_oracle.conv_shape(sizes, kernel, stride, pairs, (1,) * len(sizes))
    assert arith_or_none(d2l_output_size, sizes, kernel, totals, stride) == expected


def test_seed_004_padding_k_minus_one_keeps_the_size():
    assert d2l_output_size((8, 8), (3, 5), total_padding=(2, 4)) == (8, 8)


def test_effective_kernel_size():
    assert effective_kernel_size(3, dilation=2) == (5,)
    assert effective_kernel_size((3, 5), dilation=(1, 3)) == (3, 13)


def test_empty_output_names_the_axis_and_the_numbers():
    with pytest.raises(ShapeError) as info:
        conv_output_size((2, 8), 3)
    assert str(info.value) == "output size would be 0 on axis H: floor((2 + 2*0 - 3)/1) + 1"


@pytest.mark.parametrize(
    ("arguments", "error", "words"),
    [
        ({"stride": 0}, ConfigError, "stride must be >= 1"),
        ({"padding": -1}, ConfigError, "padding must be >= 0"),
        ({"padding": ((0, -1),)}, ConfigError, "padding must be >= 0"),
        ({"padding": ((1, 2, 3),)}, ConfigError, "(before, after) pair"),
        ({"padding": "full"}, ConfigError, "'same' or 'valid'"),
        ({"padding": "same", "stride": 2}, ConfigError, "strided"),
        ({"dilation": 0}, ConfigError, "dilation must be >= 1"),
        ({"kernel_size": 2.5}, ConfigError, "must be an integer"),
        ({"kernel_size": True}, ConfigError, "must be an integer"),
        ({"kernel_size": (3, 3), "stride": (1, 1, 1)}, ConfigError, "expected 3"),
        ({"input_size": 0}, ShapeError, "input size must be >= 1"),
    ],
)
def test_invalid_arguments_raise_one_line_errors(arguments, error, words):
    call = {"input_size": 8, "kernel_size": 3, **arguments}
    with pytest.raises(error) as info:
        conv_output_size(**call)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_ndim_is_the_longest_sequence_and_defaults_to_one():
    assert conv_output_size(224, 7, 2, 3) == (112,)
    assert conv_output_size(224, (7, 7), 2, 3) == (112, 112)
    assert conv_output_size((224, 112), 3, padding=((1, 1), (0, 2))) == (224, 112)
