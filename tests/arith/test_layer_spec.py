"""The compact layer text of ``cnnkit calc rf --layers``: parsing, round trips, errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnkit.arith.layer_spec import format_layer, parse_layers
from cnnkit.errors import ConfigError


@st.composite
def layers(draw):
    kind = draw(st.sampled_from(["conv", "pool", "transpose", "upsample"]))
    ndim = draw(st.integers(1, 3))

    def value():
        values = tuple(draw(st.integers(1, 9)) for _ in range(ndim))
        return values[0] if ndim == 1 else values

    if kind == "upsample":
        return {"kind": kind, "scale_factor": value()}
    layer = {"kind": kind, "kernel_size": value()}
    for key in ("stride", "padding", "dilation"):
        if draw(st.booleans()):
            layer[key] = value()
    if kind == "conv" and draw(st.booleans()):
        layer["padding"] = draw(st.sampled_from(["same", "valid"]))
    return layer


@given(st.lists(layers(), min_size=1, max_size=5))
def test_format_then_parse_round_trips(stack):
    text = ",".join(format_layer(layer) for layer in stack)
    assert parse_layers(text) == stack


def test_seed_examples():
    assert parse_layers("k3,k3,poolk2s2,k3")[2] == {"kind": "pool", "kernel_size": 2, "stride": 2}
    assert parse_layers("k1x7p0x3") == [{"kind": "conv", "kernel_size": (1, 7), "padding": (0, 3)}]
    assert parse_layers("tconvk4s2p1, up2")[1] == {"kind": "upsample", "scale_factor": 2}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty layer"),
        ("k3,,k3", "empty layer"),
        ("s2", "kernel size k is required"),
        ("k3k5", "given twice"),
        ("k3q1", "cannot read 'q1'"),
        ("ksame", "only p takes"),
        ("upx", "upsampling takes a factor"),
    ],
)
def test_bad_text_is_a_one_line_config_error(text, words):
    with pytest.raises(ConfigError, match=words):
        parse_layers(text)
