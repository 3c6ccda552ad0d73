"""RandomErasing: one rectangle per erased sample, of the promised area and aspect, p respected."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cnnkit.data.transforms import RandomErasing
from cnnkit.errors import ConfigError, ShapeError


def positive(count, channels=3, height=16, width=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, channels, height, width, generator=generator) * 0.8 + 0.2


def _rectangle(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    """(top, left, height, width) when ``mask`` (H, W) is exactly one filled rectangle."""
    if not bool(mask.any()):
        return None
    rows = mask.any(dim=1).nonzero().squeeze(1)
    cols = mask.any(dim=0).nonzero().squeeze(1)
    top, left = int(rows[0]), int(cols[0])
    height, width = int(rows[-1]) - top + 1, int(cols[-1]) - left + 1
    assert int(mask.sum()) == height * width, "erased pixels do not form a rectangle"
    return top, left, height, width


@given(seed=st.integers(0, 10_000), low=st.floats(0.02, 0.3), log_ratio=st.floats(-1.0, 1.0))
def test_erased_region_is_a_rectangle_of_the_promised_area_and_aspect(seed, low, log_ratio):
    high, ratio = low + 0.1, (math.exp(log_ratio), math.exp(log_ratio) * 1.5)
    images = positive(8, seed=seed)
    out, _ = RandomErasing(1.0, (low, high), ratio)(
        images, torch.zeros(8), torch.Generator().manual_seed(seed)
    )
    for original, erased in zip(images, out, strict=True):
        mask = (erased == 0).all(dim=0)
        assert torch.equal(erased[:, ~mask], original[:, ~mask])  # nothing else changed
        box = _rectangle(mask)
        if box is None:
            continue  # torchvision's rule: no candidate fitted, sample left alone
        _, _, height, width = box
        assert height < 16 and width < 16
        # h = round(sqrt(A a)), w = round(sqrt(A / a)) for an area A and aspect a (h / w):
        # the rounded sides bound A and a; those bounds must meet the promised ranges
        area_low, area_high = (height - 0.5) * (width - 0.5), (height + 0.5) * (width + 0.5)
        assert area_low <= high * 256 and area_high >= low * 256
        aspect_low, aspect_high = (height - 0.5) / (width + 0.5), (height + 0.5) / (width - 0.5)
        assert aspect_low <= ratio[1] and aspect_high >= ratio[0]


def test_probability_is_respected_per_sample():
    images = positive(2000, channels=1, height=8, width=8)
    out, _ = RandomErasing(p=0.3, scale=(0.1, 0.2), ratio=(0.8, 1.25))(
        images, torch.zeros(2000), torch.Generator().manual_seed(0)
    )
    erased = (out == 0).flatten(1).any(dim=1).float().mean()
    assert float(erased) == pytest.approx(0.3, abs=4 * math.sqrt(0.3 * 0.7 / 2000))
    assert torch.equal(RandomErasing(p=0.0)(images, torch.zeros(2000))[0], images)


def test_boxes_differ_between_samples_and_values_per_channel():
    images = positive(1).expand(32, -1, -1, -1)
    out, _ = RandomErasing(1.0, value=(0.1, 0.5, 0.9))(
        images, torch.zeros(32), torch.Generator().manual_seed(1)
    )
    masks = (out[:, 0] == 0.1) & (out[:, 1] == 0.5) & (out[:, 2] == 0.9)
    boxes = {_rectangle(m) for m in masks}
    assert len(boxes) > 16


def test_random_value_stays_in_the_unit_range():
    images = positive(8)
    out, _ = RandomErasing(1.0, value="random")(
        images, torch.zeros(8), torch.Generator().manual_seed(2)
    )
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0 and not torch.equal(out, images)


def test_errors():
    with pytest.raises(ConfigError, match="value"):
        RandomErasing(value="noise")
    with pytest.raises(ConfigError, match="p must be"):
        RandomErasing(p=1.5)
    with pytest.raises(ShapeError, match="2 values for 3 channels"):
        RandomErasing(1.0, value=(0.0, 1.0))(positive(2), torch.zeros(2))
