"""Bytes per element vs torch dtypes, the im2col bill vs F.unfold, activation bytes vs tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.arith import (
    DTYPE_BYTES,
    activation_bytes,
    conv_output_size,
    dtype_bytes,
    im2col_bytes,
    im2col_elements,
    training_activation_bytes,
)
from cnnkit.errors import UnknownNameError
from tests.arith.strategies import per_axis


@pytest.mark.parametrize("name", sorted(DTYPE_BYTES))
def test_dtype_bytes_equal_torch_itemsize(name):
    assert dtype_bytes(name) == getattr(torch, name).itemsize
    assert dtype_bytes(f"torch.{name}") == getattr(torch, name).itemsize


@pytest.mark.parametrize("alias", ["half", "double", "float", "long", "int", "short", "cfloat"])
def test_torch_aliases(alias):
    assert dtype_bytes(alias) == getattr(torch, alias).itemsize


def test_short_names_and_unknown_names():
    assert (dtype_bytes("fp16"), dtype_bytes("bf16"), dtype_bytes("fp32")) == (2, 2, 4)
    with pytest.raises(UnknownNameError, match="did you mean"):
        dtype_bytes("float17")


@st.composite
def unfold_configs(draw):
    kernel = per_axis(draw, 2, 1, 4)
    dilation = per_axis(draw, 2, 1, 2)
    stride = per_axis(draw, 2, 1, 3)
    padding = per_axis(draw, 2, 0, 2)
    sizes = tuple(
        d * (k - 1) + 1 + draw(st.integers(0, 9)) for k, d in zip(kernel, dilation, strict=True)
    )
    return (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 4)),
        kernel,
        sizes,
        stride,
        padding,
        dilation,
    )


@settings(max_examples=200)
@given(unfold_configs())
def test_im2col_elements_equal_unfold_numel(config):
    batch, channels, kernel, sizes, stride, padding, dilation = config
    x = torch.zeros(batch, channels, *sizes)
    patches = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
    output = conv_output_size(sizes, kernel, stride, padding, dilation)
    assert im2col_elements(batch, channels, kernel, output) == patches.numel()
    assert im2col_bytes(batch, channels, kernel, output, 4) == patches.numel() * x.element_size()


def test_seed_002_im2col_bill():
    """B=32, C_in=64, 224x224, K=3, same padding: 924,844,032 elements, 1.85 GB in fp16.

    unfold of one image and one channel gives (1, 9, 224*224); the property test above shows
    unfold scales with B x C_in, so the full bill is 32 x 64 times it (without allocating it).
    """
    one = F.unfold(torch.zeros(1, 1, 224, 224, dtype=torch.float16), 3, padding=1)
    output = conv_output_size((224, 224), 3, padding="same")
    assert im2col_elements(32, 64, 3, output) == 32 * 64 * one.numel() == 924_844_032
    fp16 = im2col_bytes(32, 64, 3, output, dtype_bytes("float16"))
    assert fp16 == 32 * 64 * one.numel() * one.element_size() == 1_849_688_064
    assert round(fp16 / 1e9, 2) == 1.85


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_activation_bytes_equal_the_outputs_of_a_small_cnn(dtype):
    """Seed 000's sum of B*H*W*C*bytes over the layers' outputs, read from the real tensors."""
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3),
        nn.Flatten(),
        nn.Linear(16 * 14 * 14, 10),
    ).to(dtype)
    outputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outputs.append(o)) for m in model]
    model(torch.zeros(2, 3, 32, 32, dtype=dtype))
    for hook in hooks:
        hook.remove()
    width = dtype_bytes(str(dtype))
    total = sum(o.nbytes for o in outputs)
    assert activation_bytes([o.shape for o in outputs], width) == total
    assert training_activation_bytes([o.shape for o in outputs], width) == 2 * total
