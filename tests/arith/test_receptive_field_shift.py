"""``shift``: the field of a crop ``x[..., offset:]`` against the measured field.

The measurement is the one of test_receptive_field.py: positive weights in float64, so the input
pixels with a non-zero gradient of one output are exactly the ones it sees.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.arith import Field, receptive_field_table, step
from cnnkit.arith.receptive_field import shift
from cnnkit.errors import ConfigError
from tests.arith.measured_field import (
    forward,
    input_sizes_for,
    interior,
    measured_bounds,
    sequential_layers,
)


@st.composite
def stacks_then_crops(draw, ndim: int):
    """A conv/pool stack, then per axis a crop offset (negative: padding) and a slice step."""
    layers = draw(sequential_layers(ndim=ndim, depth=3))
    offsets = tuple(draw(st.integers(-3, 4)) for _ in range(ndim))
    steps = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    return layers, offsets, steps


def _crop(y, offsets: tuple[int, ...], steps: tuple[int, ...]):
    """``y`` with positions [offset::step] kept per axis; a negative offset pads zeros first."""
    pads = [v for o in reversed(offsets) for v in (max(-o, 0), 0)]
    y = F.pad(y, pads)
    index = tuple(slice(max(o, 0), None, s) for o, s in zip(offsets, steps, strict=True))
    return y[(..., *index)]


@pytest.mark.parametrize("ndim", [1, 2])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_crop_or_strided_slice_moves_the_start_by_offset_jumps(ndim, data):
    layers, offsets, steps = data.draw(stacks_then_crops(ndim))
    before = receptive_field_table(layers, ndim=ndim)[-1]
    field = step(shift(before, offsets), 1, steps)
    sizes = tuple(n + 16 for n in input_sizes_for(field))
    x, y = forward(layers, sizes)
    y = _crop(y, offsets, steps)
    position = tuple(n // 2 for n in y.shape[2:])
    assert interior(field, position, sizes)
    assert measured_bounds(x, y, position) == list(field.bounds(position))


def test_shift_keeps_rf_and_jump_and_negative_offsets_are_padding():
    field = step(Field.input(2), 3, 2, 1)
    moved = shift(field, (3, -2))
    assert (moved.rf, moved.jump) == (field.rf, field.jump)
    assert moved.start == (field.start[0] + 3 * 2, field.start[1] - 2 * 2)
    assert shift(field, (0, -2)) == step(field, 1, 1, (0, 2))
    assert shift(Field.input(1), 1).start == (Fraction(3, 2),)  # output 0 is pixel 1


def test_shift_refuses_offsets_that_are_not_one_int_per_axis():
    with pytest.raises(ConfigError, match="offset"):
        shift(Field.input(2), (1, 2, 3))
    with pytest.raises(ConfigError, match="offset"):
        shift(Field.input(1), 1.5)  # type: ignore[arg-type]
