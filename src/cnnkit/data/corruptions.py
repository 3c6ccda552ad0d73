"""Image corruptions for robustness tests, batched and seeded per image (E5).

Each corruption is a function ``f(images, level, seeds) -> images`` on a float (N, C, H, W) batch
in [0, 1]: ``level`` is the corruption's parameter at one severity (from :data:`SEVERITY_TABLE`),
``seeds`` one int64 seed per image. Randomness is drawn per image from a generator seeded by that
image's seed, so an image is corrupted the same way whatever batch it is in. The output has the
input's dtype and lies in [0, 1]; severity 0 is the identity.

The corruptions follow ImageNet-C (Hendrycks & Dietterich, "Benchmarking Neural Network Robustness
to Common Corruptions and Perturbations", ICLR 2019) and MNIST-C (Mu & Gilmer, "MNIST-C: A
Robustness Benchmark for Computer Vision", 2019). ImageNet-C's severities are made for 224x224
photos and are too strong for 28x28 images (its contrast at severity 1 drops a small Fashion-MNIST
CNN to 13%), so the parameters here are re-calibrated for small images; the table is versioned
(:data:`SEVERITY_TABLE_VERSION`) so that published numbers name the table they used.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from cnnkit._registry import Registry
from cnnkit.errors import ConfigError, ShapeError

# The default table. A change to any parameter is a new version (the old ones stay selectable
# with ``table_version``): results name the table they were measured with.
SEVERITY_TABLE_VERSION = 2
TABLE_VERSIONS = (1, 2)
MAX_SEVERITY = 5

CorruptionFn = Callable[[torch.Tensor, float, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Corruption:
    """A named corruption: its function, its parameter at severities 1-5 in each version of the
    severity table (``tables``: version -> levels), and what that parameter means. ``revised``
    holds the function and parameter text of a version that changed the definition itself
    (table v2's pixelate), keyed by version; other versions use ``apply`` and ``parameter``."""

    name: str
    apply: CorruptionFn
    tables: dict[int, tuple[float, ...]]
    parameter: str
    source: str
    revised: dict[int, tuple[CorruptionFn, str]] = field(default_factory=dict)

    @property
    def levels(self) -> tuple[float, ...]:
        """The parameter at severities 1-5 in the default table (:data:`SEVERITY_TABLE_VERSION`)."""
        return self.tables[SEVERITY_TABLE_VERSION]

    def levels_for(self, version: int) -> tuple[float, ...]:
        check_table_version(version)
        return self.tables[version]

    def applier(self, version: int = SEVERITY_TABLE_VERSION) -> CorruptionFn:
        """The function table ``version`` defines the corruption with."""
        check_table_version(version)
        return self.revised[version][0] if version in self.revised else self.apply

    def parameter_for(self, version: int = SEVERITY_TABLE_VERSION) -> str:
        check_table_version(version)
        return self.revised[version][1] if version in self.revised else self.parameter

    def __call__(
        self,
        images: torch.Tensor,
        severity: int,
        seeds: torch.Tensor,
        table_version: int = SEVERITY_TABLE_VERSION,
    ) -> torch.Tensor:
        """``images`` corrupted at ``severity`` (0: a copy of the input), one seed per image,
        with the parameters of severity table ``table_version``."""
        check_batch(images, seeds, self.name)
        levels = self.levels_for(table_version)
        if not 0 <= severity <= len(levels):
            raise ConfigError(f"severity: must be between 0 and {len(levels)}, got {severity}")
        if severity == 0:
            return images.clone()
        # half precision: computed in float32 (CPU resampling and filters lack half kernels)
        half = images.dtype in (torch.float16, torch.bfloat16)
        work = images.float() if half else images
        out = self.applier(table_version)(work, levels[severity - 1], seeds)
        return out.clamp_(0.0, 1.0).to(images.dtype)


def check_table_version(version: object) -> None:
    if isinstance(version, bool) or version not in TABLE_VERSIONS:
        raise ConfigError(
            f"severity table version: choose from {', '.join(map(str, TABLE_VERSIONS))}, "
            f"got {version!r}"
        )


CORRUPTIONS: Registry[Corruption] = Registry("corruption")


def check_batch(images: torch.Tensor, seeds: torch.Tensor, name: str) -> None:
    if images.dim() != 4 or not images.is_floating_point():
        raise ShapeError(
            f"{name}: expects a float (N, C, H, W) batch in [0, 1], got {images.dtype} "
            f"of shape {tuple(images.shape)}"
        )
    if tuple(seeds.shape) != (images.shape[0],):
        raise ShapeError(f"{name}: needs one seed per image, got {tuple(seeds.shape)} seeds")


def image_seeds(indices: torch.Tensor, seed: int, corruption: str) -> torch.Tensor:
    """One seed per image from (seed, corruption name, the image's index in the dataset).

    The name enters through CRC-32 (stable across processes, unlike ``hash``); odd 64-bit
    multipliers keep the streams apart. The seed does not depend on the severity, so the same
    noise is scaled up from one severity to the next.
    """
    base = (seed * 0x9E3779B97F4A7C15 + zlib.crc32(corruption.encode()) * 0xBF58476D1CE4E5B9) % (
        1 << 62
    )
    return (indices.to(torch.int64).cpu() + base) % (1 << 62)


def _per_image(
    seeds: torch.Tensor, draw: Callable[[torch.Generator], torch.Tensor], device: torch.device
) -> torch.Tensor:
    """Stack ``draw(generator)`` over images, each generator seeded by that image's seed."""
    generator = torch.Generator()
    samples = []
    for seed in seeds.tolist():
        generator.manual_seed(int(seed))
        samples.append(draw(generator))
    return torch.stack(samples).to(device)


def register(
    levels: Sequence[float],
    parameter: str,
    source: str,
    *,
    v2: Sequence[float] | None = None,
    v2_definition: tuple[CorruptionFn, str] | None = None,
) -> Callable:
    """Register a corruption with its version-1 ``levels`` and, where version 2 changed them,
    its ``v2`` levels (else version 2 keeps version 1's); ``v2_definition`` (function,
    parameter text) where version 2 also changed how the corruption is made."""
    tables = {1: tuple(levels), 2: tuple(levels if v2 is None else v2)}
    revised = {} if v2_definition is None else {2: v2_definition}

    def decorator(fn: CorruptionFn) -> CorruptionFn:
        if any(len(row) != MAX_SEVERITY for row in tables.values()):
            raise ValueError(f"{fn.__name__}: needs {MAX_SEVERITY} levels")
        CORRUPTIONS.add(
            fn.__name__, Corruption(fn.__name__, fn, tables, parameter, source, revised)
        )
        return fn

    return decorator


def _grid_sample(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling, zeros outside (the background of Fashion-MNIST and MNIST)."""
    return F.grid_sample(
        images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros", align_corners=False
    )


def _affine(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return _grid_sample(images, grid)


def _pad(images: torch.Tensor, radius: int) -> torch.Tensor:
    """Reflect padding (edges mirrored, no border of zeros); replicate where the image is too
    small to mirror ``radius`` pixels."""
    mode = "reflect" if radius < min(images.shape[-2:]) else "replicate"
    return F.pad(images, (radius,) * 4, mode=mode)


def _signs(seeds: torch.Tensor, device: torch.device) -> torch.Tensor:
    """+1 or -1 per image."""
    coin = _per_image(seeds, lambda g: torch.rand((), generator=g, dtype=torch.float64), device)
    return torch.where(coin < 0.5, -1.0, 1.0).to(torch.float64)


def _angles(seeds: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A direction in [0, 2 pi) per image."""
    draw = _per_image(seeds, lambda g: torch.rand((), generator=g, dtype=torch.float64), device)
    return draw * (2 * math.pi)


@register(
    (0.05, 0.1, 0.15, 0.2, 0.3),
    "added to the value (HSV V for colour)",
    "ImageNet-C",
    v2=(0.06, 0.07, 0.08, 0.1, 0.15),
)
def brightness(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """ImageNet-C brightness: ``V + c`` in HSV, clipped (grey images: ``x + c``)."""
    if images.shape[1] == 3:
        from cnnkit.data.transforms.color import hsv_to_rgb, rgb_to_hsv

        hsv = rgb_to_hsv(images)
        hsv[:, 2] = (hsv[:, 2] + level).clamp(0, 1)
        return hsv_to_rgb(hsv)
    return images + level


@register(
    (0.85, 0.7, 0.55, 0.4, 0.3),
    "factor c towards the mean",
    "ImageNet-C",
    v2=(0.8, 0.7, 0.65, 0.6, 0.5),
)
def contrast(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """ImageNet-C contrast: ``(x - m) c + m``, m the per-image per-channel mean.

    ImageNet-C uses c = 0.4 ... 0.05, which a 28x28 CNN does not survive (13% at c = 0.4).
    """
    mean = images.mean(dim=(2, 3), keepdim=True)
    return (images - mean) * level + mean


@register(
    (0.04, 0.08, 0.12, 0.16, 0.22),
    "noise standard deviation",
    "ImageNet-C",
    v2=(0.03, 0.06, 0.08, 0.11, 0.13),
)
def gaussian_noise(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """ImageNet-C Gaussian noise: ``x + N(0, sigma^2)`` per pixel, clipped."""
    shape = tuple(images.shape[1:])
    noise = _per_image(seeds, lambda g: torch.randn(shape, generator=g), images.device)
    return images + level * noise.to(images.dtype)


@register((200.0, 100.0, 50.0, 25.0, 12.0), "photons per unit intensity", "ImageNet-C")
def shot_noise(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """ImageNet-C shot noise: ``Poisson(x c) / c`` (fewer photons c: more noise).

    Drawn per image with ``torch.poisson`` from a generator seeded by the image's seed.
    """
    rates = images.double().clamp(0, 1) * level
    generator = torch.Generator()
    out = []
    for rate, seed in zip(rates.cpu(), seeds.tolist(), strict=True):
        generator.manual_seed(int(seed))
        out.append(torch.poisson(rate, generator=generator))
    return (torch.stack(out).to(images.device) / level).to(images.dtype)


def gaussian_kernel1d(sigma: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``exp(-t^2 / (2 sigma^2))`` for t = -r..r, r = ceil(3 sigma), normalised to sum 1."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=dtype)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    return kernel / kernel.sum()


@register(
    (0.5, 0.75, 1.0, 1.25, 1.5),
    "Gaussian sigma in pixels",
    "ImageNet-C",
    v2=(0.5, 0.6, 0.7, 0.85, 1.1),
)
def gaussian_blur(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """ImageNet-C Gaussian blur: a separable Gaussian of ``sigma`` pixels, reflected edges.

    ImageNet-C blurs 224-pixel images with sigma 1-6; 0.5-1.5 does the same to 28 pixels.
    """
    channels = images.shape[1]
    kernel = gaussian_kernel1d(level).to(images.device, images.dtype)
    radius = kernel.numel() // 2
    padded = _pad(images, radius)
    rows = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    cols = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    return F.conv2d(F.conv2d(padded, rows, groups=channels), cols, groups=channels)


@register((1.0, 1.5, 2.0, 2.5, 3.0), "blur length sigma in pixels", "ImageNet-C / MNIST-C")
def motion_blur(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """ImageNet-C motion blur: a one-sided streak in a random direction per image.

    ImageNet-C uses ImageMagick's motion blur: weights ``exp(-t^2 / (2 sigma^2))`` at distance
    t = 0..r (r = 2 sigma here) along the direction, drawn with linear interpolation across it.
    """
    count, channels, _, _ = images.shape
    radius = max(1, math.ceil(2 * level))
    size = 2 * radius + 1
    angles = _angles(seeds, images.device)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64, device=images.device)
    v, u = torch.meshgrid(offsets, offsets, indexing="ij")  # v rows (down), u columns
    cos, sin = torch.cos(angles)[:, None, None], torch.sin(angles)[:, None, None]
    along = u * cos + v * sin
    across = -u * sin + v * cos
    weights = torch.exp(-(along**2) / (2 * level**2)) * (1 - across.abs()).clamp_min(0)
    weights = torch.where((along >= -0.5) & (along <= radius + 0.5), weights, 0.0)
    weights = weights / weights.sum(dim=(1, 2), keepdim=True)
    kernels = weights.to(images.dtype).repeat_interleave(channels, 0).view(-1, 1, size, size)
    padded = _pad(images, radius).reshape(
        1, count * channels, *[d + 2 * radius for d in images.shape[2:]]
    )
    # conv2d correlates: flip so that the streak points along the direction
    out = F.conv2d(padded, kernels.flip(-1, -2), groups=count * channels)
    return out.view_as(images)


@register(
    (6.0, 12.0, 18.0, 24.0, 30.0),
    "degrees, sign random per image",
    "MNIST-C",
    v2=(6.0, 12.0, 15.0, 18.0, 22.0),
)
def rotation(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """MNIST-C rotate: turn by ``level`` degrees clockwise or anticlockwise, bilinear, zero fill."""
    count, _, height, width = images.shape
    radians = _signs(seeds, images.device) * math.radians(level)
    cos, sin = torch.cos(radians), torch.sin(radians)
    theta = torch.zeros(count, 2, 3, dtype=torch.float64, device=images.device)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * (height / width)
    theta[:, 1, 0], theta[:, 1, 1] = sin * (width / height), cos
    return _affine(images, theta)


@register((1.0, 2.0, 3.0, 4.0, 5.0), "pixels, direction random per image", "MNIST-C")
def translation(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """MNIST-C translate: move by ``level`` pixels in a random direction, zero fill."""
    count, _, height, width = images.shape
    angles = _angles(seeds, images.device)
    theta = torch.zeros(count, 2, 3, dtype=torch.float64, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    # affine_grid's unit is half the image: a shift of d pixels is 2 d / size
    theta[:, 0, 2] = -2 * level * torch.cos(angles) / width
    theta[:, 1, 2] = -2 * level * torch.sin(angles) / height
    return _affine(images, theta)


@register(
    (0.9, 0.8, 0.7, 0.6, 0.5),
    "zoom factor about the centre",
    "MNIST-C",
    v2=(0.9, 0.85, 0.8, 0.75, 0.65),
)
def scale(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """MNIST-C scale: shrink the image about its centre by ``level``, zero fill around."""
    count = images.shape[0]
    theta = torch.zeros(count, 2, 3, dtype=torch.float64, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / level
    return _affine(images, theta)


@register((8.0, 16.0, 24.0, 32.0, 40.0), "displacement scale alpha (sigma 3 px)", "MNIST-C")
def elastic(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """Elastic deformation (Simard et al. 2003, as in MNIST-C and ImageNet-C).

    Displacements: uniform noise in [-1, 1] per pixel and axis, smoothed by a Gaussian of sigma
    3 pixels, times ``alpha``; the image is resampled bilinearly at the displaced positions.
    """
    height, width = images.shape[-2:]
    noise = _per_image(
        seeds,
        lambda g: torch.rand((2, height, width), generator=g, dtype=torch.float64) * 2 - 1,
        images.device,
    )
    kernel = gaussian_kernel1d(3.0).to(images.device)
    radius = kernel.numel() // 2
    padded = _pad(noise, radius)
    smooth = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(2, 1, 1, -1), groups=2)
    smooth = F.conv2d(smooth, kernel.view(1, 1, -1, 1).expand(2, 1, -1, 1), groups=2)
    dx, dy = smooth[:, 0] * level, smooth[:, 1] * level
    ys = torch.arange(height, dtype=torch.float64, device=images.device)[None, :, None]
    xs = torch.arange(width, dtype=torch.float64, device=images.device)[None, None, :]
    grid_x = (2 * (xs + dx) + 1) / width - 1
    grid_y = (2 * (ys + dy) + 1) / height - 1
    return _grid_sample(images, torch.stack((grid_x, grid_y), dim=-1))


def _down_up(images: torch.Tensor, factor: float, down: str, up: str) -> torch.Tensor:
    height, width = images.shape[-2:]
    small = (max(1, round(height * factor)), max(1, round(width * factor)))
    if down == "area":
        reduced = F.adaptive_avg_pool2d(images, small)
    else:
        reduced = F.interpolate(images, size=small, mode=down, antialias=True, align_corners=False)
    if up == "nearest":
        return F.interpolate(reduced, size=(height, width), mode="nearest")
    return F.interpolate(reduced, size=(height, width), mode=up, align_corners=False)


def area_weights(size_in: int, size_out: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(size_out, size_in) weights of area resampling along one axis.

    Output pixel j is centred at ``c = (j + 0.5) * s`` in input pixels (``s = size_in /
    size_out``); its box is ``[c - h, c + h]`` with ``h = max(s, 1) / 2`` (the output pixel's
    footprint when shrinking, one input pixel when enlarging); each input pixel weighs the
    length of its overlap with the box, normalised to sum to one. Shrinking by a whole factor
    gives block means, as Pillow's BOX does; enlarging blends the two input pixels a box
    straddles, where Pillow's BOX takes the nearest one.
    """
    scale = size_in / size_out
    centres = (torch.arange(size_out, dtype=dtype) + 0.5) * scale
    half = max(scale, 1.0) / 2
    low = (centres - half).clamp(0, size_in)[:, None]
    high = (centres + half).clamp(0, size_in)[:, None]
    edges = torch.arange(size_in, dtype=dtype)[None, :]
    overlap = (torch.minimum(high, edges + 1) - torch.maximum(low, edges)).clamp_min(0)
    return overlap / overlap.sum(dim=1, keepdim=True)


def area_resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, *size) by area resampling (:func:`area_weights`) on each axis."""
    height, width = images.shape[-2:]
    rows = area_weights(height, size[0]).to(images.device, images.dtype)
    cols = area_weights(width, size[1]).to(images.device, images.dtype)
    return torch.einsum("ih,nchw,jw->ncij", rows, images, cols)


def pixelate_area(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """Pixelate by a size factor, ImageNet-C's parameterisation: area resampling down to
    ``level`` of the size and back up (table v2's definition).

    ImageNet-C shrinks and enlarges with Pillow's BOX filter, whose enlargement is
    nearest-neighbour: on 28 pixels a factor such as 0.93 then duplicates two rows and columns
    and shifts everything between them, which cost a 92% Fashion-MNIST model 7 points, more
    than 2x2 blocks of some larger factors. Area resampling up blends the pixels across a block
    edge instead, so the damage grows with the factor.
    """
    height, width = images.shape[-2:]
    small = (max(1, round(height * level)), max(1, round(width * level)))
    return area_resize(area_resize(images, small), (height, width))


@register(
    (2.0, 3.0, 4.0, 5.0, 6.0),
    "block side in pixels",
    "ImageNet-C",
    v2=(0.8, 0.6, 0.46, 0.43, 0.4),
    v2_definition=(pixelate_area, "size factor (area resampling down and up)"),
)
def pixelate(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """ImageNet-C pixelate: each ``k`` x ``k`` block replaced by its mean (box down, nearest up).

    ImageNet-C shrinks by a factor (0.6-0.25) with a box filter and enlarges with nearest
    neighbours; on 28 pixels a non-integer factor misaligns the blocks and the damage stops
    growing with the severity, so the blocks here have whole sides (edge blocks are partial).
    Table v1's definition; v2 uses :func:`pixelate_area`.
    """
    block = int(level)
    height, width = images.shape[-2:]
    means = F.avg_pool2d(images, block, stride=block, ceil_mode=True)
    blocks = means.repeat_interleave(block, dim=-2).repeat_interleave(block, dim=-1)
    return blocks[..., :height, :width]


@register(
    (0.75, 0.6, 0.5, 0.4, 0.3),
    "size factor",
    "ImageNet-C (resampling)",
    v2=(0.8, 0.7, 0.65, 0.6, 0.5),
)
def resample(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """Down-then-up resampling: antialiased bilinear to ``level`` of the size, bilinear back.

    The lost resolution of a smaller camera or a resized upload; unlike pixelate, no blocks.
    """
    return _down_up(images, level, "bilinear", "bilinear")


def jpeg_roundtrip(image: torch.Tensor, quality: int) -> torch.Tensor:
    """One (C, H, W) image in [0, 1] -> uint8 -> Pillow JPEG at ``quality`` -> back to [0, 1]."""
    import numpy as np
    from PIL import Image

    pixels = (image.detach().cpu().float().clamp(0, 1) * 255).round().to(torch.uint8)
    array = pixels.squeeze(0).numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array, mode="L" if pixels.shape[0] == 1 else "RGB").save(
        buffer, format="JPEG", quality=int(quality)
    )
    buffer.seek(0)
    decoded = np.asarray(Image.open(buffer).convert("L" if pixels.shape[0] == 1 else "RGB"))
    out = torch.from_numpy(decoded.copy()).float() / 255.0
    return out[None] if out.dim() == 2 else out.permute(2, 0, 1)


@register(
    (50.0, 30.0, 20.0, 12.0, 7.0),
    "JPEG quality (Pillow)",
    "ImageNet-C",
    v2=(30.0, 12.0, 7.0, 4.0, 2.0),
)
def jpeg(images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
    """ImageNet-C JPEG compression: encode and decode each image with Pillow at ``quality``.

    ImageNet-C's qualities 25-7 are kept at the strong end; 50 starts gentler for 28 pixels.
    """
    if images.shape[1] not in (1, 3):
        raise ShapeError(f"jpeg: needs 1 or 3 channels, got {images.shape[1]}")
    out = torch.stack([jpeg_roundtrip(image, int(level)) for image in images])
    return out.to(images.device, images.dtype)


def corruption_names() -> list[str]:
    """The registered corruptions, in the order of the severity table."""
    return [str(name) for name in CORRUPTIONS]


def severity_table(version: int = SEVERITY_TABLE_VERSION) -> dict[str, dict[str, object]]:
    """Severity table ``version``: per corruption its parameter, source and values at
    severities 1-5."""
    check_table_version(version)
    return {
        name: {
            "parameter": CORRUPTIONS.get(name).parameter_for(version),
            "source": CORRUPTIONS.get(name).source,
            "levels": list(CORRUPTIONS.get(name).levels_for(version)),
        }
        for name in corruption_names()
    }


def corrupt(
    images: torch.Tensor,
    name: str,
    severity: int,
    *,
    seed: int = 0,
    indices: torch.Tensor | None = None,
    table_version: int = SEVERITY_TABLE_VERSION,
) -> torch.Tensor:
    """``images`` (float, [0, 1]) under corruption ``name`` at ``severity`` (0-5), with the
    parameters of severity table ``table_version`` (1 or 2, the default).

    ``indices`` are the images' positions in their dataset (default 0..N-1); with ``seed`` they
    fix each image's randomness, so a result does not depend on how the data is batched.
    """
    corruption = CORRUPTIONS.get(name)
    if indices is None:
        indices = torch.arange(images.shape[0])
    return corruption(images, severity, image_seeds(indices, seed, name), table_version)
