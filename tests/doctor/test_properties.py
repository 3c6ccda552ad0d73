"""Property tests: rules agree with PyTorch measured directly, over random geometries."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.doctor import examine


def fired(model: nn.Module, shape: tuple[int, ...], rule: str, **options) -> bool:  # type: ignore[no-untyped-def]
    return bool(examine(model, shape, rules=[rule], **options).findings)


@settings(max_examples=25)
@given(kernel=st.integers(1, 7), stride=st.integers(1, 4))
def test_checkerboard_iff_pytorch_coverage_is_uneven(kernel: int, stride: int) -> None:
    # Oracle: a transposed conv of all-ones input and weights counts the taps per output.
    up = nn.ConvTranspose2d(1, 1, kernel, stride=stride, bias=False)
    with torch.no_grad():
        up.weight.fill_(1.0)
        counts = up(torch.ones(1, 1, 24, 24))[0, 0]
    interior = counts[kernel:-kernel, kernel:-kernel]  # away from the edges (24 > 2 * 7)
    uneven = bool(interior.max() != interior.min())
    assert fired(up, (1, 24, 24), "checkerboard-transposed-conv") == uneven


def measured_rf(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Oracle: the input pixels along H whose gradient reaches the centre output (all-positive
    weights, so nothing cancels)."""
    x = torch.ones(1, *shape, requires_grad=True)
    out = model(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    return int(rows.max() - rows.min() + 1)


@settings(max_examples=20, deadline=None)
@given(depth=st.integers(1, 4), stride=st.integers(1, 2), size=st.integers(12, 40))
def test_rf_rule_iff_measured_field_is_below_half(depth: int, stride: int, size: int) -> None:
    layers = []
    for i in range(depth):
        layers.append(nn.Conv2d(1, 1, 3, stride=stride if i == 0 else 1, padding=1, bias=False))
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for layer in layers:
            layer.weight.fill_(1.0)
    shape = (1, size, size)
    rf = measured_rf(model, shape)
    if rf >= size:  # the field reaches the border from the centre: covered
        return
    assert fired(model, shape, "rf-smaller-than-input") == (rf < 0.5 * size)


@settings(max_examples=25)
@given(kernel=st.integers(1, 9), dilation=st.integers(1, 3), size=st.integers(3, 12))
def test_kernel_exceeds_input_iff_the_window_is_wider(
    kernel: int, dilation: int, size: int
) -> None:
    span = dilation * (kernel - 1) + 1  # what PyTorch's output size formula uses
    padding = span // 2
    conv = nn.Conv2d(1, 1, kernel, dilation=dilation, padding=padding)
    assert conv(torch.zeros(1, 1, size, size)).shape[-1] >= 1  # PyTorch can run it
    assert fired(conv, (1, size, size), "kernel-exceeds-input") == (span > size)


@settings(max_examples=20)
@given(channels=st.integers(1, 40))
def test_channels_rule_iff_not_a_multiple_of_8(channels: int) -> None:
    model = nn.Sequential(nn.Conv2d(3, channels, 3), nn.ReLU(), nn.Conv2d(channels, 16, 3))
    expected = channels > 8 and channels % 8 != 0
    assert fired(model, (3, 8, 8), "channels-not-multiple-of-8") == expected
