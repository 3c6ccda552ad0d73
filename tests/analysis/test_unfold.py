"""Windows cut with ``F.unfold`` (im2col) and ``Tensor.unfold``, overlapping or not (halo
attention's key/value blocks), and put back with ``F.fold``: receptive fields against the
float64 gradient of one output (tests/analysis/test_receptive_field.py's measurement).

An unfolded map's position sees exactly its window (clipped to the image where padding
reaches past it), as the convolution with the same kernel, stride, padding and dilation does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.analysis import summarize
from tests.analysis.test_receptive_field import _positive, _predicted, _support
from tests.model_guard import model_left_as_found


class Im2col(nn.Module):
    """F.unfold viewed back as a map (N, C kh kw, Lh, Lw)."""

    def __init__(self, kernel, stride, padding, dilation) -> None:
        super().__init__()
        self.args = {"kernel_size": kernel, "stride": stride, "padding": padding}
        self.args["dilation"] = dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(x, **self.args)
        grid = [_count(n, *args) for n, *args in zip(x.shape[2:], *self._pairs(), strict=True)]
        return cols.view(x.shape[0], cols.shape[1], *grid)

    def _pairs(self):
        return [self.args[k] for k in ("kernel_size", "stride", "padding", "dilation")]


class TensorUnfold(nn.Module):
    """Tensor.unfold along H then W after F.pad (no padding of its own), a 1x1 conv after."""

    def __init__(self, kernel, stride, padding) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.mix = nn.Conv2d(kernel[0] * kernel[1], 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (ph, pw), (kh, kw), (sh, sw) = self.padding, self.kernel, self.stride
        x = F.pad(x, [pw, pw, ph, ph])
        blocks = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, 1, Lh, Lw, kh, kw)
        n, _, lh, lw = blocks.shape[:4]
        return self.mix(blocks.permute(0, 1, 4, 5, 2, 3).reshape(n, kh * kw, lh, lw))


class UnfoldFold(nn.Module):
    """MobileViT's unfold -> per-window Linear (mixes each window) -> fold."""

    def __init__(self, kernel, stride, size) -> None:
        super().__init__()
        self.kernel, self.stride, self.size = kernel, stride, size
        width = kernel[0] * kernel[1]
        self.linear = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(x, self.kernel, stride=self.stride)
        cols = self.linear(cols.transpose(1, 2)).transpose(1, 2)
        return F.fold(cols, self.size, self.kernel, stride=self.stride)


def _count(size, kernel, stride, padding, dilation) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _assert_exact(model: nn.Module, shape: tuple[int, ...]) -> None:
    """Every output position sees exactly its reported interval where it lies inside the
    image; where padding reaches past the image, what it sees is inside the interval (a
    dilated window's last tap in the image may fall short of the image's edge)."""
    model = _positive(model)
    with model_left_as_found(model):
        out = summarize(model, shape).layers[-1]
    assert out.rf is not None and None not in out.rf and not any(out.rf_global or ())
    grid = out.output_shape[2:]
    for position in [(i, j) for i in range(grid[0]) for j in range(grid[1])]:
        predicted = _predicted(out.rf, out.jump, out.start, position)
        seen = _support(model, shape, position)
        for (low, high), (first, last), n in zip(predicted, seen, shape[1:], strict=True):
            assert low <= first and last <= high, (position, predicted, seen)
            if low >= 0 and high <= n - 1:
                assert (low, high) == (first, last), (position, predicted, seen)


pair = st.tuples(st.integers(1, 4), st.integers(1, 4))


@settings(max_examples=30, deadline=None)
@given(pair, pair, st.data())
def test_f_unfold_field_is_its_window(kernel, stride, data):
    padding = tuple(data.draw(st.integers(0, k // 2)) for k in kernel)
    dilation = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    count = data.draw(st.integers(2, 4))
    grid = zip(kernel, stride, dilation, strict=True)
    sizes = tuple(d * (k - 1) + 1 + s * count for k, s, d in grid)
    model = Im2col(kernel, stride, padding, dilation)
    _assert_exact(model, (1, *sizes))
    out = summarize(model, (1, *sizes)).layers[-1]
    spans = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    assert out.rf == spans and out.jump == stride  # the convolution's own figures


@settings(max_examples=30, deadline=None)
@given(pair, pair, st.data())
def test_tensor_unfold_overlapping_blocks_are_exact(kernel, stride, data):
    padding = tuple(data.draw(st.integers(0, k - 1)) for k in kernel)
    count = data.draw(st.integers(2, 4))
    sizes = tuple(k + s * count for k, s in zip(kernel, stride, strict=True))
    _assert_exact(TensorUnfold(kernel, stride, padding), (1, *sizes))
    out = summarize(TensorUnfold(kernel, stride, padding), (1, *sizes)).layers[-1]
    conv = nn.Conv2d(1, 2, kernel, stride, padding)
    assert (out.rf, out.jump, out.start) == _conv_field(conv, sizes)


def _conv_field(conv: nn.Conv2d, sizes) -> tuple:
    row = summarize(conv, (1, *sizes)).layers[-1]
    return row.rf, row.jump, row.start


@settings(max_examples=20, deadline=None)
@given(pair, st.data(), st.integers(2, 4))
def test_fold_after_unfold_covers_every_output(kernel, data, count):
    # stride <= kernel: every output is in some window (a larger stride leaves holes of zeros)
    stride = tuple(data.draw(st.integers(1, k)) for k in kernel)
    sizes = tuple(k + s * count for k, s in zip(kernel, stride, strict=True))
    model = _positive(UnfoldFold(kernel, stride, sizes))
    with model_left_as_found(model):
        out = summarize(model, (1, *sizes)).layers[-1]
    assert out.rf is not None and None not in out.rf
    for position in [(i, j) for i in range(sizes[0]) for j in range(sizes[1])]:
        predicted = _predicted(out.rf, out.jump, out.start, position)
        seen = _support(model, (1, *sizes), position)
        for (low, high), (first, last) in zip(predicted, seen, strict=True):
            assert low <= first and last <= high, (position, predicted, seen)
    if kernel == stride:  # MobileViT's non-overlapping patches: each output sees its patch,
        # which the one centred interval covers for every offset in it (as pixel_shuffle)
        assert out.jump == (1, 1) and out.rf == tuple(2 * k - 1 for k in kernel)


def test_a_fold_onto_another_grid_is_unknown_not_guessed():
    class Regridded(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            cols = F.unfold(x, 2, stride=2)  # a 4 x 4 grid of windows
            return F.fold(cols, (2, 8), 1)  # read as a 2 x 8 grid of 1 x 1 windows

    out = summarize(Regridded(), (1, 8, 8)).layers[-1]
    assert out.output_shape == (1, 4, 2, 8) and out.rf == (None, None)


class OneHaloWindow(nn.Module):
    """Halo attention's keys on a map no larger than its block: one window over all of it."""

    def __init__(self, halo: int, size: int) -> None:
        super().__init__()
        self.halo, self.window = halo, size + 2 * halo
        self.mix = nn.Conv2d(self.window * self.window, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.halo
        blocks = F.pad(x, [h, h, h, h]).unfold(2, self.window, 4).unfold(3, self.window, 4)
        return self.mix(blocks.flatten(4).permute(0, 1, 4, 2, 3).flatten(1, 2))  # (N, w w, 1, 1)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 3), st.integers(2, 9))
def test_one_window_over_the_whole_map_sees_every_pixel(halo, size):
    model = _positive(OneHaloWindow(halo, size))
    with model_left_as_found(model):
        out = summarize(model, (1, size, size)).layers[-1]
    assert out.rf_global == (True, True)
    assert _support(model, (1, size, size), (0, 0)) == [(0, size - 1)] * 2


def test_a_window_of_one_position_on_a_one_pixel_axis_is_not_global():
    class Single(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.unfold(2, 1, 1)

    out = summarize(Single(), (2, 1, 5)).layers[-1]
    assert out.rf == (1, 1) and out.rf_global == (False, False)
