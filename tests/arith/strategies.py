"""Hypothesis strategies for layer configurations, valid ones and (sometimes) invalid ones."""

from __future__ import annotations

from hypothesis import strategies as st

# Largest input size per number of spatial axes: the tensors stay tiny.
MAX_SIZE = {1: 24, 2: 12, 3: 7}


def per_axis(draw, ndim: int, low: int, high: int) -> tuple[int, ...]:
    return tuple(draw(st.integers(low, high)) for _ in range(ndim))


def corrupt(draw, config: dict[str, tuple[int, ...]], bad: dict[str, list[int]]) -> dict:
    """With probability ~1/4, replace one axis of one argument by an invalid value."""
    if draw(st.integers(0, 3)) != 0:
        return config
    name = draw(st.sampled_from(sorted(bad)))
    values = list(config[name])
    values[draw(st.integers(0, len(values) - 1))] = draw(st.sampled_from(bad[name]))
    return {**config, name: tuple(values)}


def as_argument(draw, values: tuple[int, ...]):
    """Pass a per-axis value as an int when every axis agrees (sometimes), else as a tuple."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return values


@st.composite
def conv_configs(draw):
    ndim = draw(st.integers(1, 3))
    config = {
        "input_size": per_axis(draw, ndim, 1, MAX_SIZE[ndim]),
        "kernel_size": per_axis(draw, ndim, 1, 5),
        "stride": per_axis(draw, ndim, 1, 4),
        "padding": per_axis(draw, ndim, 0, 3),
        "dilation": per_axis(draw, ndim, 1, 3),
    }
    bad = {"input_size": [0], "kernel_size": [0], "stride": [0], "padding": [-1], "dilation": [0]}
    return corrupt(draw, config, bad)


@st.composite
def transpose_configs(draw):
    ndim = draw(st.integers(1, 3))
    config = {
        "input_size": per_axis(draw, ndim, 1, MAX_SIZE[ndim] // 2),
        "kernel_size": per_axis(draw, ndim, 1, 5),
        "stride": per_axis(draw, ndim, 1, 4),
        "padding": per_axis(draw, ndim, 0, 4),
        "output_padding": per_axis(draw, ndim, 0, 3),
        "dilation": per_axis(draw, ndim, 1, 3),
    }
    bad = {
        "input_size": [0],
        "kernel_size": [0],
        "stride": [0],
        "padding": [-1],
        "output_padding": [-1],
        "dilation": [0],
    }
    return corrupt(draw, config, bad)


@st.composite
def pool_configs(draw):
    ndim = draw(st.integers(1, 3))
    kernel = per_axis(draw, ndim, 1, 5)
    config = {
        "input_size": per_axis(draw, ndim, 1, MAX_SIZE[ndim]),
        "kernel_size": kernel,
        "stride": per_axis(draw, ndim, 1, 4),
        # mostly legal (<= k/2), sometimes one more than PyTorch allows
        "padding": tuple(draw(st.integers(0, k // 2 + 1)) for k in kernel),
        "dilation": per_axis(draw, ndim, 1, 3),
    }
    bad = {"input_size": [0], "kernel_size": [0], "stride": [0], "padding": [-1], "dilation": [0]}
    return corrupt(draw, config, bad)
