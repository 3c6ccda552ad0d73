"""Views that move pixels between space and channels (space-to-depth as TResNet writes it,
depth-to-space and pixel shuffle by hand, ViT patchify): their receptive fields are exact for
any block size, measured by the float64 gradient of one output (tests/analysis/
test_receptive_field.py's method) and equal to those of PyTorch's own pixel_(un)shuffle."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.analysis import summarize
from tests.analysis.test_receptive_field import _positive, _predicted, _support


def space_to_depth(x: torch.Tensor, b: int) -> torch.Tensor:
    """TResNet's SpaceToDepth: view, permute, view."""
    n, c, h, w = x.shape
    x = x.view(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4).contiguous()
    return x.view(n, c * b * b, h // b, w // b)


def depth_to_space(x: torch.Tensor, r: int) -> torch.Tensor:
    """A pixel shuffle written by hand."""
    n, c, h, w = x.shape
    x = x.view(n, c // (r * r), r, r, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c // (r * r), h * r, w * r)


class SpaceToDepthNet(nn.Module):
    def __init__(self, block: int, kernel: int, builtin: bool = False) -> None:
        super().__init__()
        self.block, self.builtin = block, builtin
        self.conv = nn.Conv2d(block * block, 2, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.builtin:
            return self.conv(F.pixel_unshuffle(x, self.block))
        return self.conv(space_to_depth(x, self.block))


class DepthToSpaceNet(nn.Module):
    def __init__(self, factor: int, builtin: bool = False) -> None:
        super().__init__()
        self.factor, self.builtin = factor, builtin
        self.conv1 = nn.Conv2d(1, factor * factor, 3, stride=2)
        self.conv2 = nn.Conv2d(1, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        y = F.pixel_shuffle(y, self.factor) if self.builtin else depth_to_space(y, self.factor)
        return self.conv2(y)


class Patchify(nn.Module):
    """ViT's patch embedding written as view/permute/reshape and a Linear over each patch."""

    def __init__(self, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.linear = nn.Linear(patch * patch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        p = self.patch
        x = x.view(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        tokens = self.linear(x.reshape(n, h // p, w // p, c * p * p))
        return tokens.permute(0, 3, 1, 2)  # back to a map: (N, 3, H/p, W/p)


def _check_against_gradient(model: nn.Module, shape: tuple[int, ...]) -> None:
    model = _positive(model)
    summary = summarize(model, shape)
    out = summary.layers[-1]
    assert out.rf is not None and None not in out.rf and not any(out.rf_global or ())
    grid = out.output_shape[2:]
    for position in {(0, 0), tuple(n // 2 for n in grid), tuple(n - 1 for n in grid)}:
        predicted = _predicted(out.rf, out.jump, out.start, position)
        seen = _support(model, shape, position)
        for (low, high), (first, last) in zip(predicted, seen, strict=True):
            assert low <= first and last <= high  # covers what the output sees
    assert summary.total.rf == out.rf and summary.total.rf_layer == summary.layers[-1].name


@settings(max_examples=15)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(2, 5))
def test_space_to_depth_by_views_is_exact_for_any_block(block, kernel, blocks):
    shape = (1, block * (blocks + kernel), block * (blocks + kernel))
    _check_against_gradient(SpaceToDepthNet(block, kernel), shape)
    by_views = summarize(SpaceToDepthNet(block, kernel), shape).layers[-1]
    builtin = summarize(SpaceToDepthNet(block, kernel, builtin=True), shape).layers[-1]
    assert (by_views.rf, by_views.jump, by_views.start) == (builtin.rf, builtin.jump, builtin.start)
    if block > 1:  # exact, not only covering: the first output sees (kernel) blocks
        assert by_views.rf == (block * kernel,) * 2 and by_views.jump == (block, block)


@settings(max_examples=10)
@given(st.integers(2, 4), st.integers(9, 16))
def test_depth_to_space_by_views_equals_pixel_shuffle(factor, size):
    by_views = summarize(DepthToSpaceNet(factor), (1, size, size)).layers[-1]
    builtin = summarize(DepthToSpaceNet(factor, builtin=True), (1, size, size)).layers[-1]
    assert by_views.rf is not None and None not in by_views.rf
    assert (by_views.rf, by_views.jump, by_views.start) == (builtin.rf, builtin.jump, builtin.start)
    _check_against_gradient(DepthToSpaceNet(factor), (1, size, size))


@settings(max_examples=10)
@given(st.integers(1, 8), st.integers(2, 4))  # one patch: the whole image, global
def test_patchify_sees_one_patch(patch, count):
    summary = summarize(Patchify(patch), (1, patch * count, patch * count))
    out = summary.layers[-1]
    assert out.rf == (patch, patch) and out.jump == (patch, patch)
    _check_against_gradient(Patchify(patch), (1, patch * count, patch * count))
