"""Seeded random numbers for batched transforms: uniforms, integers, Beta, crop boxes.

Every draw takes an optional ``torch.Generator``; numbers are drawn on the generator's device
(any device works) and moved to the batch's device, so a seeded run is reproducible.
"""

from __future__ import annotations

import math

import torch


def generator_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def uniform(
    shape: tuple[int, ...],
    low: float,
    high: float,
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform numbers in [low, high) on ``device``."""
    gen_device = generator_device(generator, device)
    values = torch.rand(shape, generator=generator, device=gen_device, dtype=dtype)
    return (values.to(device) * (high - low)) + low


def integers_below(highs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One integer uniform in ``0 .. highs[i] - 1`` per element (int64; ``highs`` >= 1)."""
    values = uniform(tuple(highs.shape), 0.0, 1.0, generator, highs.device).double()
    # floor(u * high) is uniform on 0..high-1; the clamp guards u rounding up to 1.0.
    return torch.minimum((values * highs).floor().long(), highs - 1)


def permutation(
    count: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """A random permutation of ``0 .. count - 1`` on ``device``."""
    order = torch.randperm(count, generator=generator, device=generator_device(generator, device))
    return order.to(device)


def gamma(concentration: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Gamma(concentration, 1) samples, one per element (float64).

    Marsaglia and Tsang (2000), "A simple method for generating gamma variables": for a >= 1,
    d = a - 1/3, c = 1/sqrt(9d); draw z ~ N(0, 1), v = (1 + cz)^3, u ~ U(0, 1), accept d*v when
    v > 0 and log u < z^2/2 + d - d v + d log v. For a < 1, Gamma(a) = Gamma(a + 1) * U^(1/a).
    (torch.distributions cannot take a generator, hence this.) Rejection runs on the whole
    tensor until every element is accepted (acceptance > 95 % per round).
    """
    device = concentration.device
    shape = tuple(concentration.shape)
    a = concentration.double().reshape(-1)
    boost = a < 1
    d = torch.where(boost, a + 1, a) - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    result = torch.zeros_like(a)
    pending = torch.arange(a.numel(), device=device)
    gen_device = generator_device(generator, device)
    while pending.numel():  # each round redraws only the rejected elements
        count = pending.numel()
        z = torch.randn(count, generator=generator, device=gen_device, dtype=torch.float64)
        u = torch.rand(count, generator=generator, device=gen_device, dtype=torch.float64)
        z, u = z.to(device), u.to(device)
        d_p, c_p = d[pending], c[pending]
        v = (1 + c_p * z) ** 3
        safe_v = torch.where(v > 0, v, torch.ones_like(v))
        log_v = torch.log(safe_v)
        accept = (v > 0) & (torch.log(u) < 0.5 * z * z + d_p - d_p * safe_v + d_p * log_v)
        result[pending[accept]] = (d_p * safe_v)[accept]
        pending = pending[~accept]
    if bool(boost.any()):
        u = uniform((a.numel(),), 0.0, 1.0, generator, device).double().clamp_min(1e-300)
        result = torch.where(boost, result * u ** (1.0 / a), result)
    return result.reshape(shape)


def beta(
    alpha: float, count: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """``count`` samples of Beta(alpha, alpha) as X / (X + Y), X, Y ~ Gamma(alpha) (float32)."""
    concentration = torch.full((2, count), float(alpha), dtype=torch.float64, device=device)
    x, y = gamma(concentration, generator)
    total = x + y
    # both gammas can underflow to 0 for tiny alpha: the limit is a fair coin between 0 and 1
    coin = (uniform((count,), 0.0, 1.0, generator, device) < 0.5).double()
    return torch.where(total > 0, x / total.clamp_min(1e-300), coin).float()


def sample_boxes(
    count: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator | None,
    device: torch.device,
    *,
    attempts: int = 10,
    strict: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random boxes (top, left, box_height, box_width, found) per sample, torchvision's way.

    Each of ``attempts`` candidates has area ``height * width * U(scale)`` and aspect ratio
    ``w / h = exp(U(log ratio))``; sides are ``round(sqrt(area * ratio))`` (width) and
    ``round(sqrt(area / ratio))`` (height). The first candidate that fits (``1 <= h <= height``,
    ``1 <= w <= width``; strictly smaller than the image when ``strict``) is placed uniformly
    at random. ``found`` is False where no candidate fits (the caller decides the fallback).
    """
    area = float(height * width)
    shape = (count, attempts)
    target_area = area * uniform(shape, scale[0], scale[1], generator, device).double()
    log_ratio = uniform(shape, math.log(ratio[0]), math.log(ratio[1]), generator, device).double()
    aspect = torch.exp(log_ratio)
    box_width = torch.round(torch.sqrt(target_area * aspect)).long()
    box_height = torch.round(torch.sqrt(target_area / aspect)).long()
    max_height, max_width = (height - 1, width - 1) if strict else (height, width)
    fits = (box_width >= 1) & (box_height >= 1) & (box_width <= max_width)
    fits &= box_height <= max_height
    found = fits.any(dim=1)
    first = torch.argmax(fits.int(), dim=1, keepdim=True)  # index of the first fitting candidate
    box_height = box_height.gather(1, first).squeeze(1).clamp(1, height)
    box_width = box_width.gather(1, first).squeeze(1).clamp(1, width)
    top = integers_below(height - box_height + 1, generator)
    left = integers_below(width - box_width + 1, generator)
    return top, left, box_height, box_width, found
