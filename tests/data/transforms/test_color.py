"""ColorJitter and the HSV conversions, against colorsys and closed forms computed in numpy."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.data.transforms import ColorJitter, grayscale, hsv_to_rgb, rgb_to_hsv
from cnnkit.errors import ConfigError, ShapeError


def rgb(count=4, size=5, seed=0, dtype=torch.float32):
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed)).to(dtype)


def _per_pixel(images: torch.Tensor, function) -> torch.Tensor:
    """Apply a colorsys function pixel by pixel (the oracle, deliberately a plain loop)."""
    array = images.double().permute(0, 2, 3, 1).reshape(-1, 3).numpy()
    converted = np.array([function(*pixel) for pixel in array])
    return (
        torch.from_numpy(converted)
        .reshape(*images.shape[:1], *images.shape[2:], 3)
        .permute(0, 3, 1, 2)
    )


@settings(max_examples=20)  # the oracle loops over pixels in Python
@given(seed=st.integers(0, 10_000), quantised=st.booleans())
def test_rgb_to_hsv_and_back_equal_colorsys(seed, quantised):
    images = rgb(2, 4, seed, torch.float64)
    if quantised:  # ties between channels and greys exercise colorsys's branch order
        images = (images * 4).round() / 4
    hsv = rgb_to_hsv(images)
    torch.testing.assert_close(hsv, _per_pixel(images, colorsys.rgb_to_hsv), atol=1e-12, rtol=0)
    torch.testing.assert_close(
        hsv_to_rgb(hsv), _per_pixel(hsv, colorsys.hsv_to_rgb), atol=1e-12, rtol=0
    )
    torch.testing.assert_close(hsv_to_rgb(hsv), images, atol=1e-12, rtol=0)


def test_hue_shift_equals_colorsys():
    images = rgb(3, 4, 1, torch.float64)
    out, _ = ColorJitter(hue=(0.2, 0.2))(images, torch.zeros(3))

    def shifted(r, g, b):
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        return colorsys.hsv_to_rgb((h + 0.2) % 1.0, s, v)

    torch.testing.assert_close(out, _per_pixel(images, shifted), atol=1e-12, rtol=0)


def test_fixed_factors_equal_the_closed_forms():
    images = rgb(3, 6, 2, torch.float64)
    x = images.numpy()
    luma = (
        0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    )  # ITU-R 601-2, torchvision's weights
    bright, _ = ColorJitter(brightness=(1.7, 1.7))(images, torch.zeros(3))
    np.testing.assert_allclose(bright.numpy(), np.clip(1.7 * x, 0, 1), atol=1e-12)
    contrast, _ = ColorJitter(contrast=(0.3, 0.3))(images, torch.zeros(3))
    mean = luma.mean(axis=(1, 2))[:, None, None, None]
    np.testing.assert_allclose(contrast.numpy(), np.clip(0.3 * x + 0.7 * mean, 0, 1), atol=1e-12)
    saturation, _ = ColorJitter(saturation=(2.0, 2.0))(images, torch.zeros(3))
    grey = luma[:, None]
    np.testing.assert_allclose(saturation.numpy(), np.clip(2 * x - grey, 0, 1), atol=1e-12)
    np.testing.assert_allclose(grayscale(images).numpy(), grey, atol=1e-12)


def test_factors_are_drawn_per_sample_within_range():
    images = torch.full((32, 1, 2, 2), 0.5)
    out, _ = ColorJitter(brightness=0.4)(images, torch.zeros(32), torch.Generator().manual_seed(0))
    factors = out[:, 0, 0, 0] / 0.5
    assert bool(((factors >= 0.6) & (factors <= 1.4)).all())
    assert len(set(factors.tolist())) == 32
    assert torch.equal(out, out[:, :, :1, :1].expand_as(out))  # one factor per image


def test_all_four_stay_in_the_unit_range_and_defaults_do_nothing():
    images = rgb(16, 8, 3)
    out, _ = ColorJitter(0.8, 0.8, 0.8, 0.5)(
        images, torch.zeros(16), torch.Generator().manual_seed(1)
    )
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(ColorJitter()(images, torch.zeros(16))[0], images)


def test_saturation_and_hue_need_three_channels():
    grey = torch.rand(2, 1, 4, 4)
    with pytest.raises(ShapeError, match="3-channel"):
        ColorJitter(hue=0.1)(grey, torch.zeros(2))
    ColorJitter(brightness=0.2, contrast=0.2)(grey, torch.zeros(2))  # fine on one channel


@pytest.mark.parametrize("bad", [{"brightness": -0.1}, {"hue": 0.6}, {"contrast": (1.5, 0.5)}])
def test_invalid_ranges(bad):
    with pytest.raises(ConfigError):
        ColorJitter(**bad)
