"""Receptive fields vs an empirical measurement: the gradient of one output w.r.t. the input.

Every layer has positive weights (average pools stand in for max pools, which would only pass
the argmax), computed in float64: the input pixels with a non-zero gradient are exactly the
ones the output sees. Their extent must be [start + i jump - rf/2, start + i jump + rf/2).
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.arith import (
    Field,
    global_field,
    merge,
    receptive_field_table,
    step,
    transpose_step,
    upsample_step,
)
from cnnkit.errors import ConfigError, ShapeError
from tests.arith.measured_field import (
    apply,
    forward,
    input_sizes_for,
    interior,
    measured_bounds,
    sequential_layers,
)


def check_exact(layers: list[dict], ndim: int) -> None:
    field = receptive_field_table(layers)[-1]
    sizes = input_sizes_for(field)
    x, y = forward(layers, sizes)
    position = tuple(n // 2 for n in y.shape[2:])
    assert interior(field, position, sizes)
    expected = [tuple(b) for b in field.bounds(position)]
    assert measured_bounds(x, y, position) == expected
    # the centre is start + i * jump
    assert field.centre(position) == tuple(Fraction(a + b, 2) for a, b in expected)


@settings(max_examples=150)
@given(sequential_layers(ndim=1, depth=5))
def test_receptive_field_of_1d_stacks_equals_the_measured_field(layers):
    check_exact(layers, 1)


@settings(max_examples=60)
@given(sequential_layers(ndim=2, depth=3))
def test_receptive_field_of_2d_stacks_equals_the_measured_field(layers):
    check_exact(layers, 2)


def test_pytorch_same_padding_puts_the_extra_pixel_after():
    """An even kernel with padding='same': the start moves by floor(total/2), not total/2."""
    layers = [{"kernel_size": 4, "padding": "same"}]
    assert receptive_field_table(layers)[0].start == (Fraction(1, 2) + Fraction(3, 2) - 1,)
    check_exact(layers, 1)


@st.composite
def upsampling_stacks(draw, single: bool):
    """Conv/pool stacks with transposed convs or nearest upsampling (1-D)."""
    before = draw(sequential_layers(ndim=1, depth=2)) if draw(st.booleans()) else []
    count = 1 if single else draw(st.integers(1, 2))
    layers = list(before)
    for _ in range(count):
        if draw(st.booleans()):
            layers.append({"kind": "upsample", "scale_factor": draw(st.integers(1, 3))})
        else:
            kernel = draw(st.integers(1, 5))
            layers.append(
                {
                    "kind": "transpose",
                    "kernel_size": kernel,
                    "stride": draw(st.integers(1, 3)),
                    "padding": draw(st.integers(0, 2)),
                    "dilation": draw(st.integers(1, 2)),
                }
            )
        after = draw(sequential_layers(ndim=1, depth=2)) if draw(st.booleans()) else []
        if single:  # stride-1 layers after it, so every phase of the output grid is reached
            after = [{**layer, "stride": (1,)} for layer in after if layer.get("kind") != "pool"]
            after = [{**a, "padding": (0,)} if a["padding"] == "same" else a for a in after]
        layers += after
    return layers


def measured_over_a_period(layers):
    field = receptive_field_table(layers)[-1]
    sizes = input_sizes_for(field)
    x, y = forward(layers, sizes)
    centre = y.shape[-1] // 2
    period = int(1 / Fraction(field.jump[0])) + 1 if field.jump[0] < 1 else 1
    rows = []
    for position in range(centre - 2 * period - 2, centre + 2 * period + 3):
        if 0 <= position < y.shape[-1] and interior(field, (position,), sizes):
            rows.append((field.bounds(position)[0], measured_bounds(x, y, (position,))))
    assert rows, "no interior output to measure"
    return rows


@settings(max_examples=120)
@given(upsampling_stacks(single=False))
def test_transposed_and_upsampled_fields_cover_the_measured_field(layers):
    for (left, right), measured in measured_over_a_period(layers):
        if measured is not None:  # an output may see no input at all (kernel 1, stride 2)
            assert left <= measured[0][0] and measured[0][1] <= right


@settings(max_examples=120)
@given(upsampling_stacks(single=True))
def test_one_transposed_layer_field_is_the_tightest_uniform_cover(layers):
    """Some output position reaches the left edge, some the right edge (seed 002's uneven
    coverage: no single one needs to reach both)."""
    rows = [(bounds, m[0]) for bounds, m in measured_over_a_period(layers) if m is not None]
    assert all(left <= a and b <= right for (left, right), (a, b) in rows)
    assert any(left == a for (left, _), (a, _) in rows)
    assert any(right == b for (_, right), (_, b) in rows)


def test_transposed_conv_with_kernel_divisible_by_stride_covers_evenly():
    """k = 4, s = 2, p = 1 (001's upsampler): every output sees exactly 2 inputs; the uniform
    cover r = 1 + 3/2 is half a pixel wider, on the left or on the right by output parity."""
    layers = [{"kind": "transpose", "kernel_size": 4, "stride": 2, "padding": 1}]
    field = transpose_step(Field.input(1), 4, 2, 1)
    assert (field.rf, field.jump, field.start) == (
        (Fraction(5, 2),),
        (Fraction(1, 2),),
        (Fraction(1, 4),),
    )
    widths = {measured[0][1] - measured[0][0] for _, measured in measured_over_a_period(layers)}
    assert widths == {2}


@st.composite
def residual_pairs(draw):
    """Two 1-D branches whose strides multiply to the same jump (so they can be added)."""
    total = draw(st.sampled_from([1, 2, 4]))
    branches = []
    for _ in range(2):
        layers = draw(sequential_layers(ndim=1, depth=3))
        layers = [{**layer, "stride": (1,)} for layer in layers]
        layers = [{**a, "padding": (0,)} if a.get("padding") == "same" else a for a in layers]
        if total > 1:
            layers.insert(draw(st.integers(0, len(layers))), {"kernel_size": 2, "stride": total})
        branches.append(layers)
    return branches


@settings(max_examples=100)
@given(residual_pairs())
def test_merge_equals_the_measured_field_of_a_residual_add(branches):
    fields = [receptive_field_table(layers)[-1] for layers in branches]
    merged = merge(fields)
    sizes = (input_sizes_for(merged)[0] + 64,)
    x = torch.zeros(1, 1, *sizes, dtype=torch.float64, requires_grad=True)
    outputs = []
    for layers in branches:
        y = x
        for layer in layers:
            y = apply(layer, y)
        outputs.append(y)
    length = min(y.shape[-1] for y in outputs)
    added = outputs[0][..., :length] + outputs[1][..., :length]
    position = (length // 2,)
    assert interior(merged, position, sizes)
    assert measured_bounds(x, added, position) == list(merged.bounds(position))


def test_merge_needs_equal_jumps():
    with pytest.raises(ShapeError, match=r"different jumps \(1,\) and \(2,\)"):
        merge([Field.input(1), step(Field.input(1), 2, 2)])
    with pytest.raises(ConfigError):
        merge([])


def test_global_field_is_the_whole_input():
    x = torch.zeros(1, 1, 7, 10, dtype=torch.float64, requires_grad=True)
    y = F.adaptive_avg_pool2d(x, 1)
    assert measured_bounds(x, y, (0, 0)) == list(global_field((7, 10)).bounds((0, 0)))


def test_upsample_is_a_transposed_conv_with_kernel_equal_to_stride():
    field = step(Field.input(2), 3, 2, 1)
    assert upsample_step(field, 2) == transpose_step(field, 2, 2, 0)


def test_seed_figures():
    """000 §6 problem 2; 000 §2.3; 003's LeNet (reference-figures.md)."""
    rows = receptive_field_table(
        [
            {"kernel_size": 3},
            {"kernel_size": 3},
            {"kernel_size": 2, "stride": 2},
            {"kernel_size": 3},
        ]
    )
    assert [f.rf[0] for f in rows] == [3, 5, 6, 10]
    assert [f.jump[0] for f in rows] == [1, 1, 2, 2]
    pool = {"kind": "pool", "kernel_size": 2}
    lenet = [{"kernel_size": 5, "padding": 2}, pool, {"kernel_size": 5}, pool]
    assert [f.rf[0] for f in receptive_field_table(lenet)] == [5, 6, 14, 16]


def test_field_validation():
    with pytest.raises(ConfigError):
        Field(rf=(1, 1), jump=(1,), start=(0,))
    with pytest.raises(ConfigError):
        Field(rf=(0,), jump=(1,), start=(0,))
    with pytest.raises(ConfigError, match="unknown keys"):
        receptive_field_table([{"kernel_size": 3, "k": 3}])
    assert Field.input(2).start == (Fraction(1, 2), Fraction(1, 2))
