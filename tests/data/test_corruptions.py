"""Corruptions: identity at severity 0, seeded per image, dtype and range kept, PSNR falling with
the severity; blur against a conv with the Gaussian written out, JPEG against Pillow itself."""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from cnnkit.data.corruptions import (
    CORRUPTIONS,
    SEVERITY_TABLE_VERSION,
    TABLE_VERSIONS,
    area_resize,
    corrupt,
    corruption_names,
    image_seeds,
    severity_table,
)
from cnnkit.errors import ConfigError, ShapeError, UnknownNameError

NAMES = corruption_names()
RANDOM = {"gaussian_noise", "shot_noise", "motion_blur", "rotation", "translation", "elastic"}


def smooth_images(seed: int, count: int = 3, channels: int = 1, size: int = 28) -> torch.Tensor:
    """Object-like test images: a smooth random blob on a dark background, in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, channels, 6, 6, generator=generator)
    image = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    mask = ((x**2 + y**2) < 0.6).float()
    return (image * mask).clamp(0, 1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def test_the_table_has_the_thirteen_corruptions_of_the_issue_with_five_levels():
    assert set(NAMES) == {
        "brightness", "contrast", "gaussian_noise", "shot_noise", "gaussian_blur", "motion_blur",
        "rotation", "translation", "scale", "elastic", "pixelate", "jpeg", "resample",
    }  # fmt: skip
    assert SEVERITY_TABLE_VERSION == 2 and TABLE_VERSIONS == (1, 2)
    for version in TABLE_VERSIONS:
        table = severity_table(version)
        assert all(len(row["levels"]) == 5 and row["source"] for row in table.values())
    assert severity_table() == severity_table(2)


# version 1 as first published (docs/robustness.md): it must stay selectable, unchanged
V1 = {
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3), "contrast": (0.85, 0.7, 0.55, 0.4, 0.3),
    "gaussian_noise": (0.04, 0.08, 0.12, 0.16, 0.22), "shot_noise": (200, 100, 50, 25, 12),
    "gaussian_blur": (0.5, 0.75, 1, 1.25, 1.5), "motion_blur": (1, 1.5, 2, 2.5, 3),
    "rotation": (6, 12, 18, 24, 30), "translation": (1, 2, 3, 4, 5),
    "scale": (0.9, 0.8, 0.7, 0.6, 0.5), "elastic": (8, 16, 24, 32, 40),
    "pixelate": (2, 3, 4, 5, 6), "resample": (0.75, 0.6, 0.5, 0.4, 0.3),
    "jpeg": (50, 30, 20, 12, 7),
}  # fmt: skip


def test_version_1_is_kept_and_selectable():
    assert {name: tuple(row["levels"]) for name, row in severity_table(1).items()} == V1
    assert severity_table(1)["pixelate"]["parameter"] == "block side in pixels"
    images = smooth_images(3, count=2)
    for name in NAMES:
        corruption = CORRUPTIONS.get(name)
        seeds = image_seeds(torch.arange(2), 4, name)
        expected = corruption.apply(images, V1[name][2], seeds).clamp(0, 1)
        torch.testing.assert_close(corrupt(images, name, 3, seed=4, table_version=1), expected)
    with pytest.raises(ConfigError, match="choose from 1, 2, got 3"):
        corrupt(images, "jpeg", 1, table_version=3)
    with pytest.raises(ConfigError, match="choose from 1, 2"):
        severity_table(0)


@pytest.mark.parametrize("version", TABLE_VERSIONS)
@pytest.mark.parametrize("name", NAMES)
def test_severity_zero_is_the_identity_and_every_severity_keeps_dtype_shape_and_range(
    name, version
):
    images = smooth_images(1, count=4)
    assert torch.equal(corrupt(images, name, 0, table_version=version), images)
    for dtype in (torch.float32, torch.float64):
        typed = images.to(dtype)
        for severity in range(1, 6):
            out = corrupt(typed, name, severity, seed=3, table_version=version)
            assert out.dtype == dtype and out.shape == typed.shape
            assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
            assert not torch.equal(out, typed), (name, severity)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_images_are_corrupted_in_float32_and_keep_their_dtype(dtype):
    """float16/bfloat16 batches: the float32 result, rounded to the batch's dtype (the
    resampling corruptions raised NotImplementedError on CPU for half tensors)."""
    images = smooth_images(5, count=2).to(dtype)
    for name in NAMES:
        out = corrupt(images, name, 3, seed=2)
        assert out.dtype == dtype and out.shape == images.shape, name
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0, name
        expected = corrupt(images.float(), name, 3, seed=2).to(dtype)
        assert torch.equal(out, expected), name


@pytest.mark.parametrize("version", TABLE_VERSIONS)
@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed_and_independent_of_the_batching(name, version):
    images = smooth_images(2, count=6)
    whole = corrupt(images, name, 3, seed=7, table_version=version)
    assert torch.equal(corrupt(images, name, 3, seed=7, table_version=version), whole)
    # the same images cut into batches of 4 and 2, each with its dataset indices
    first = corrupt(images[:4], name, 3, seed=7, indices=torch.arange(0, 4), table_version=version)
    second = corrupt(images[4:], name, 3, seed=7, indices=torch.arange(4, 6), table_version=version)
    torch.testing.assert_close(torch.cat([first, second]), whole, atol=1e-6, rtol=0)
    if name in RANDOM:
        assert not torch.equal(corrupt(images, name, 3, seed=8, table_version=version), whole)


# Table v1's pixelate blocks of 2-6 pixels are not nested (a 4-block is not made of 3-blocks),
# so its error can dip from 3 to 4 on one image; block means are orthogonal projections, so
# nested sizes (2 -> 4, 3 -> 6) and the first and last severity are ordered for every image.
PIXELATE_V1_ORDERED = [(1, 3), (2, 5), (1, 5)]


@settings(max_examples=15)
@given(
    seed=st.integers(0, 2**31 - 1),
    channels=st.sampled_from([1, 3]),
    version=st.sampled_from(TABLE_VERSIONS),
)
def test_psnr_falls_as_the_severity_grows(seed, channels, version):
    images = smooth_images(seed, count=2, channels=channels)
    for name in NAMES:
        values = [
            psnr(corrupt(images, name, s, seed=seed, table_version=version), images)
            for s in range(6)
        ]
        assert values[0] == math.inf
        v1_pixelate = name == "pixelate" and version == 1
        pairs = PIXELATE_V1_ORDERED if v1_pixelate else itertools.pairwise(range(1, 6))
        for weaker, stronger in pairs:
            assert values[stronger] <= values[weaker] + 1e-6, (name, version, values)
    assert CORRUPTIONS.get("pixelate").levels_for(1) == (2.0, 3.0, 4.0, 5.0, 6.0)


def test_v2_pixelate_is_area_resampling_down_and_up():
    images = smooth_images(8, count=2, channels=3).double()
    # shrinking by a whole factor: block means, as Pillow's BOX (ImageNet-C) shrinks
    torch.testing.assert_close(area_resize(images, (14, 14)), F.avg_pool2d(images, 2))
    for image in images[:1]:
        array = image[0].numpy().astype(np.float32)
        pillow = np.asarray(Image.fromarray(array, mode="F").resize((7, 7), Image.BOX))
        np.testing.assert_allclose(area_resize(image[None], (7, 7))[0, 0].numpy(), pillow, 1e-5)
    # enlarging by 2: each output pixel is centred a quarter pixel from an input pixel's centre;
    # its one-pixel box covers 3/4 of that pixel and 1/4 of the neighbour (edges: all of it)
    small = torch.rand(1, 1, 4, 4, dtype=torch.float64)
    up = area_resize(small, (8, 8))
    assert up[0, 0, 3, 3] == pytest.approx(float(
        (0.75 * small[0, 0, 1] + 0.25 * small[0, 0, 2]) @ torch.tensor([0, 0.75, 0.25, 0],
                                                                          dtype=torch.float64)
    ))  # fmt: skip
    factor = CORRUPTIONS.get("pixelate").levels_for(2)[-1]
    size = round(28 * factor)
    expected = area_resize(area_resize(images, (size, size)), (28, 28))
    torch.testing.assert_close(corrupt(images, "pixelate", 5), expected)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_gaussian_blur_is_a_conv_with_the_gaussian_kernel(severity):
    sigma = CORRUPTIONS.get("gaussian_blur").levels[severity - 1]
    radius = math.ceil(3 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    images = smooth_images(4, count=2, channels=3).double()
    padded = F.pad(images, (radius,) * 4, mode="reflect")
    expected = F.conv2d(padded, kernel.expand(3, 1, -1, -1).contiguous(), groups=3)
    torch.testing.assert_close(corrupt(images, "gaussian_blur", severity), expected)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("severity", [1, 5])
def test_jpeg_is_pillow_encode_and_decode_at_the_tables_quality(channels, severity):
    quality = int(CORRUPTIONS.get("jpeg").levels[severity - 1])
    images = (smooth_images(5, count=2, channels=channels) * 255).round() / 255
    out = corrupt(images, "jpeg", severity)
    for image, got in zip(images, out, strict=True):
        array = (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        array = array[:, :, 0] if channels == 1 else array
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue()))).astype(np.float32) / 255
        decoded = decoded[None] if channels == 1 else decoded.transpose(2, 0, 1)
        assert torch.equal(got, torch.from_numpy(np.ascontiguousarray(decoded)))


def test_brightness_contrast_and_pixelate_follow_their_formulas():
    images = smooth_images(6, count=2)
    level = CORRUPTIONS.get("brightness").levels[2]
    torch.testing.assert_close(corrupt(images, "brightness", 3), (images + level).clamp(0, 1))
    factor = CORRUPTIONS.get("contrast").levels[4]
    mean = images.mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(corrupt(images, "contrast", 5), (images - mean) * factor + mean)
    # table v1: 28 = 7 blocks of 4: every block becomes its mean
    assert CORRUPTIONS.get("pixelate").levels_for(1)[2] == 4
    blocks = images.reshape(2, 1, 7, 4, 7, 4).mean(dim=(3, 5), keepdim=True)
    expected = blocks.expand(2, 1, 7, 4, 7, 4).reshape(images.shape)
    torch.testing.assert_close(corrupt(images, "pixelate", 3, table_version=1), expected)


def test_scale_and_translation_keep_a_centred_dot_where_geometry_says():
    image = torch.zeros(1, 1, 29, 29, dtype=torch.float64)
    image[..., 14, 14] = 1.0
    assert corrupt(image, "scale", 5)[..., 14, 14].item() == pytest.approx(1.0)  # the centre stays
    moved = corrupt(image, "translation", 3, seed=1)  # 3 pixels in some direction
    y, x = torch.nonzero(moved[0, 0] > 0, as_tuple=True)
    weights = moved[0, 0][y, x]
    centre_y = float((y.double() * weights).sum() / weights.sum())
    centre_x = float((x.double() * weights).sum() / weights.sum())
    assert math.hypot(centre_y - 14, centre_x - 14) == pytest.approx(3.0, abs=1e-6)


def test_bad_names_severities_and_shapes_are_one_line_errors():
    images = smooth_images(0)
    with pytest.raises(UnknownNameError, match="did you mean: gaussian_blur"):
        corrupt(images, "gausian_blur", 1)
    with pytest.raises(ConfigError, match="severity"):
        corrupt(images, "contrast", 6)
    with pytest.raises(ShapeError, match="float"):
        corrupt(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), "contrast", 1)


def _centroid(image: torch.Tensor) -> tuple[float, float]:
    y, x = torch.nonzero(image > 0, as_tuple=True)
    weights = image[y, x].double()
    return float((y * weights).sum() / weights.sum()), float((x * weights).sum() / weights.sum())


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_rotation_turns_a_dot_by_the_tables_angle_about_the_centre(severity):
    degrees = CORRUPTIONS.get("rotation").levels[severity - 1]
    image = torch.zeros(3, 1, 29, 29, dtype=torch.float64)
    image[..., 14, 22] = 1.0  # 8 pixels right of the centre
    for out in corrupt(image, "rotation", severity, seed=severity):
        y, x = _centroid(out[0])
        assert math.hypot(y - 14, x - 14) == pytest.approx(8.0, abs=0.15)
        turned = math.degrees(abs(math.atan2(y - 14, x - 14)))
        assert turned == pytest.approx(degrees, abs=1.0)


@pytest.mark.parametrize(
    "name", ["gaussian_blur", "motion_blur", "pixelate", "resample", "contrast", "elastic"]
)
def test_a_constant_image_stays_constant_under_filters_that_average(name):
    # kernels and block means sum to one; elastic only moves pixels (interior stays 0.6)
    image = torch.full((2, 3, 28, 28), 0.6, dtype=torch.float64)
    out = corrupt(image, name, 5, seed=1)
    inner = out if name != "elastic" else out[..., 10:18, 10:18]
    torch.testing.assert_close(inner, torch.full_like(inner, 0.6))


@pytest.mark.parametrize("name", NAMES)
def test_tiny_images_work_too(name):
    # 3x3 is smaller than the blur radius: the padding falls back to replicating the edge
    images = smooth_images(7, count=2, channels=3, size=3)
    out = corrupt(images, name, 5, seed=0)
    assert out.shape == images.shape and float(out.min()) >= 0 and float(out.max()) <= 1
