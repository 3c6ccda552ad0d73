"""Crop with padding, flips, rotation and resized crop: each does what it promises, per sample."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from cnnkit.data.transforms import (
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomVerticalFlip,
)
from cnnkit.errors import ConfigError, ShapeError


def batch(count=8, channels=2, height=7, width=9, seed=0):
    generator = torch.Generator().manual_seed(seed)
    # strictly positive, so padding zeros can never be mistaken for content
    return torch.rand(count, channels, height, width, generator=generator) * 0.9 + 0.1


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _shifts(image: torch.Tensor, padded: torch.Tensor, padding: int) -> list[tuple[int, int]]:
    """Every (dy, dx) for which ``image`` is ``padded`` cropped at offset (dy, dx)."""
    height, width = image.shape[-2:]
    return [
        (dy - padding, dx - padding)
        for dy in range(2 * padding + 1)
        for dx in range(2 * padding + 1)
        if torch.equal(padded[:, dy : dy + height, dx : dx + width], image)
    ]


@given(
    padding=st.integers(0, 4),
    seed=st.integers(0, 1000),
    mode=st.sampled_from(["constant", "edge", "reflect"]),
)
def test_crop_with_padding_is_a_translation_by_at_most_padding(padding, seed, mode):
    images = batch(6, seed=seed)
    out, _ = RandomCrop((7, 9), padding=padding, padding_mode=mode)(
        images, torch.zeros(6), seeded(seed)
    )
    torch_mode = {"constant": "constant", "edge": "replicate", "reflect": "reflect"}[mode]
    padded = F.pad(images, (padding,) * 4, mode=torch_mode)  # torch's padding is the oracle
    for index in range(6):
        assert _shifts(out[index], padded[index], padding), f"sample {index} is not a shift"


def test_each_sample_gets_its_own_offset():
    images = batch(1).expand(64, -1, -1, -1).contiguous()
    out, _ = RandomCrop((7, 9), padding=3)(images, torch.zeros(64), seeded(0))
    padded = F.pad(images[0], (3, 3, 3, 3))
    offsets = {_shifts(out[i], padded, 3)[0] for i in range(64)}
    assert len(offsets) > 20  # of 49 possible


def test_crop_smaller_than_the_input_and_fill():
    images = batch(4)
    out, _ = RandomCrop(5, padding=(1, 2), fill=0.5)(images, torch.zeros(4), seeded(1))
    assert out.shape == (4, 2, 5, 5)
    with pytest.raises(ShapeError, match="exceeds the padded input"):
        RandomCrop(20)(images, torch.zeros(4))
    with pytest.raises(ConfigError, match="padding_mode"):
        RandomCrop(5, padding_mode="symmetric")


@pytest.mark.parametrize(
    ("transform", "dims"), [(RandomHorizontalFlip, (-1,)), (RandomVerticalFlip, (-2,))]
)
def test_flip_is_a_flip_per_sample(transform, dims):
    images = batch(64)
    out, _ = transform(0.5)(images, torch.zeros(64), seeded(0))
    flipped = [torch.equal(o, i.flip(dims)) for o, i in zip(out, images, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 16 < sum(flipped) < 48  # Binomial(64, 0.5): far inside 4 standard deviations
    assert torch.equal(transform(1.0)(images, torch.zeros(64))[0], images.flip(dims))
    assert torch.equal(transform(0.0)(images, torch.zeros(64))[0], images)


@pytest.mark.parametrize(("angle", "turns"), [(90, 1), (-90, -1), (180, 2)])
def test_right_angles_equal_rot90_counter_clockwise(angle, turns):
    images = batch(3, height=8, width=8)
    out, _ = RandomRotation((angle, angle), interpolation="nearest")(images, torch.zeros(3))
    assert torch.equal(out, torch.rot90(images, turns, dims=(2, 3)))


def test_rotation_of_a_non_square_image_about_its_centre():
    images = batch(2, height=6, width=10)
    out, _ = RandomRotation((90, 90), interpolation="nearest")(images, torch.zeros(2))
    canvas = F.pad(images, (0, 0, 2, 2))  # 10x10, same centre
    expected = torch.rot90(canvas, 1, dims=(2, 3))[:, :, 2:8, :]
    assert torch.equal(out, expected)


def test_zero_angle_is_the_identity_and_fill_marks_the_corners():
    images = batch(2)
    same, _ = RandomRotation(0)(images, torch.zeros(2))
    torch.testing.assert_close(same, images, atol=1e-6, rtol=0)
    ones = torch.ones(1, 1, 9, 9)
    out, _ = RandomRotation((45, 45), interpolation="nearest", fill=0.25)(ones, torch.zeros(1))
    assert out[0, 0, 0, 0] == 0.25 and out[0, 0, 4, 4] == 1.0


def test_rotation_angles_are_per_sample_and_bounded():
    images = batch(1, height=15, width=15).expand(16, -1, -1, -1)
    out, _ = RandomRotation(30)(images, torch.zeros(16), seeded(0))
    assert len({round(float(o.sum()), 4) for o in out}) > 8
    assert float(out.max()) <= float(images.max()) + 1e-6  # bilinear: convex combinations


@pytest.mark.parametrize("size", [(5, 6), (20, 30)])
def test_resized_crop_of_the_whole_image_equals_interpolate(size):
    images = batch(3, height=10, width=12)
    transform = RandomResizedCrop(size, scale=(1.0, 1.0), ratio=(1.2, 1.2))
    out, _ = transform(images, torch.zeros(3), seeded(0))
    expected = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_resized_crop_at_box_size_is_an_exact_crop():
    images = batch(16, height=20, width=20)
    transform = RandomResizedCrop(10, scale=(0.25, 0.25), ratio=(1.0, 1.0))  # 10x10 boxes
    top, left, height, width = transform.boxes(16, 20, 20, seeded(5), images.device)
    out, _ = transform(images, torch.zeros(16), seeded(5))
    assert set(height.tolist()) == {10} and set(width.tolist()) == {10}
    for i in range(16):
        crop = images[i, :, top[i] : top[i] + 10, left[i] : left[i] + 10]
        torch.testing.assert_close(out[i], crop, atol=1e-5, rtol=0)
    assert len(set(zip(top.tolist(), left.tolist(), strict=True))) > 8


@given(seed=st.integers(0, 10_000), low=st.floats(0.05, 0.9))
def test_resized_crop_boxes_respect_scale_and_ratio(seed, low):
    transform = RandomResizedCrop(8, scale=(low, 1.0), ratio=(0.75, 4 / 3))
    top, left, height, width = transform.boxes(32, 64, 64, seeded(seed), torch.device("cpu"))
    assert bool(((top + height <= 64) & (left + width <= 64) & (top >= 0) & (left >= 0)).all())
    # w = round(sqrt(A r)), h = round(sqrt(A / r)): the rounded sides bound the area A and the
    # ratio r (w / h); those bounds must meet the promised ranges
    h, w = height.double(), width.double()
    assert bool(((h - 0.5) * (w - 0.5) <= 64 * 64).all())
    assert bool(((h + 0.5) * (w + 0.5) >= low * 64 * 64).all())
    assert bool((((w - 0.5) / (h + 0.5) <= 4 / 3) & ((w + 0.5) / (h - 0.5) >= 0.75)).all())


def test_resized_crop_falls_back_to_a_centre_crop():
    images = batch(2, height=10, width=20)  # ratio 2 outside (0.75, 4/3)
    transform = RandomResizedCrop(4, scale=(5.0, 6.0), ratio=(0.75, 4 / 3))  # never fits
    top, left, height, width = transform.boxes(2, 10, 20, seeded(0), images.device)
    assert height.tolist() == [10, 10] and width.tolist() == [13, 13]
    assert top.tolist() == [0, 0] and left.tolist() == [3, 3]
