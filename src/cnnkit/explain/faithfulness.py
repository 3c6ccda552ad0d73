"""Which explanation to believe: deletion/insertion AUC and ROAD (the "beyond" part of F3).

- Deletion and insertion (Petsiuk et al. 2018, RISE, section 4.2): pixels are ranked by the map
  (bilinearly resized to the image); deletion replaces the top-ranked fraction ``f`` of pixels by
  0 (the dataset mean once images are normalised) for ``f = 0, 1/n, ..., 1`` and records the
  target class's softmax probability; insertion starts from a Gaussian-blurred copy and puts the
  original pixels back in the same order. The scores are the areas under these curves
  (trapezoid rule over ``f`` in [0, 1]): a faithful map has a **low deletion** and a **high
  insertion** AUC.
- ROAD (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for Attribution
  Methods"): remove a fraction of pixels, most relevant first (MoRF) or least relevant first
  (LeRF), impute them, and record the target's probability; the score is its mean over the
  fractions. Faithful: **low MoRF**, **high LeRF**. The imputer is ROAD's noisy linear
  imputation, each removed pixel the weighted mean of its 8 neighbours (weight 1/6 for the 4
  direct ones, 1/12 for the diagonals), solved approximately by Jacobi sweeps started from the
  mean of the kept pixels (a documented simplification of the paper's sparse solve), plus
  Gaussian noise (std 0.01, seeded per call, as in ROAD's code).

Ties in a map (a constant or all-zero map) are broken in raster order. Everything is batched in
torch: one model call per chunk of perturbed images, the model in eval mode and left as found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.explain._state import as_batch, eval_mode, logits_of

CHUNK = 256
ROAD_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class FaithfulnessResult:
    """Per-image scores (tensors of shape (B,)) and the curves behind them.

    ``deletion_curve``/``insertion_curve`` are (B, steps + 1) probabilities at ``fractions``;
    ``morf_curve``/``lerf_curve`` (B, len(road_fractions)).
    """

    deletion_auc: torch.Tensor
    insertion_auc: torch.Tensor
    road_morf: torch.Tensor
    road_lerf: torch.Tensor
    fractions: tuple[float, ...]
    road_fractions: tuple[float, ...]
    deletion_curve: torch.Tensor = field(repr=False)
    insertion_curve: torch.Tensor = field(repr=False)
    morf_curve: torch.Tensor = field(repr=False)
    lerf_curve: torch.Tensor = field(repr=False)
    targets: tuple[int, ...] = ()

    def means(self) -> dict[str, float]:
        """The four scores averaged over the images."""
        return {
            "deletion_auc": float(self.deletion_auc.mean()),
            "insertion_auc": float(self.insertion_auc.mean()),
            "road_morf": float(self.road_morf.mean()),
            "road_lerf": float(self.road_lerf.mean()),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.means(),
            "per_image": {
                "deletion_auc": self.deletion_auc.tolist(),
                "insertion_auc": self.insertion_auc.tolist(),
                "road_morf": self.road_morf.tolist(),
                "road_lerf": self.road_lerf.tolist(),
            },
            "fractions": list(self.fractions),
            "road_fractions": list(self.road_fractions),
            "targets": list(self.targets),
        }


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (kernel radius ``ceil(3 sigma)``, reflect padding)."""
    radius = max(1, int(torch.tensor(3 * sigma).ceil()))
    radius = min(radius, images.shape[-1] - 1, images.shape[-2] - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def _neighbour_sum(t: torch.Tensor) -> torch.Tensor:
    """ROAD's neighbour weights applied with zero padding: 1/6 x the 4 direct neighbours plus
    1/12 x the 4 diagonal ones (shifted slices: much faster than a grouped conv on CPU)."""
    p = F.pad(t, (1, 1, 1, 1))
    direct = p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]
    diagonal = p[..., :-2, :-2] + p[..., :-2, 2:] + p[..., 2:, :-2] + p[..., 2:, 2:]
    return direct / 6 + diagonal / 12


def noisy_linear_impute(
    images: torch.Tensor,
    removed: torch.Tensor,
    *,
    sweeps: int = 100,
    noise: float = 0.01,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Fill ``removed`` pixels ((B, H, W) bool) of ``images`` (B, C, H, W) as ROAD does.

    Each removed pixel becomes the weighted mean of its neighbours (1/6 direct, 1/12 diagonal;
    weights renormalised at the border), by ``sweeps`` Jacobi iterations from the kept pixels'
    per-channel mean; then ``noise`` x N(0, 1) is added to the removed pixels only.
    """
    mask = removed[:, None].to(images.dtype)
    keep = 1 - mask
    kept = keep.sum(dim=(2, 3), keepdim=True).clamp_min(1)
    mean = (images * keep).sum(dim=(2, 3), keepdim=True) / kept
    values = images * keep + mean * mask
    norm = _neighbour_sum(torch.ones_like(images[:1, :1]))
    for _ in range(sweeps):
        average = _neighbour_sum(values) / norm
        values = images * keep + average * mask
    if noise > 0:
        values = values + noise * mask * torch.randn(
            values.shape, generator=generator, dtype=values.dtype, device="cpu"
        ).to(values.device)
    return values


def _ranks(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H*W) rank of each pixel, 0 = most relevant (ties: raster order)."""
    up = F.interpolate(maps[:, None].double(), size=size, mode="bilinear", align_corners=False)
    flat = up.flatten(1)
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    positions = torch.arange(flat.shape[1], device=flat.device)
    ranks.scatter_(1, order, positions.expand_as(order).contiguous())
    return ranks


def _probabilities(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Softmax probability of ``targets`` for each image, in chunks."""
    parts = []
    for chunk, rows in zip(images.split(CHUNK), targets.split(CHUNK), strict=True):
        probs = logits_of(model(chunk)).softmax(dim=1)
        parts.append(probs.gather(1, rows[:, None])[:, 0])
    return torch.cat(parts)


def faithfulness(
    model: nn.Module,
    images: torch.Tensor,
    maps: Any,
    *,
    targets: Sequence[int] | None = None,
    steps: int = 16,
    road_fractions: Sequence[float] = ROAD_FRACTIONS,
    blur_sigma: float | None = None,
    sweeps: int = 100,
    noise: float = 0.01,
) -> FaithfulnessResult:
    """Deletion/insertion AUC (Petsiuk et al. 2018) and ROAD MoRF/LeRF (Rong et al. 2022).

    Args:
        images: (B, C, H, W), normalised as the model expects (0 is the mean colour).
        maps: (B, h, w) saliency (any resolution; resized bilinearly), or a ``CamResult``.
        targets: the class whose probability is tracked; default: each image's prediction.
        steps: deletion/insertion curve points (``f = k / steps``).
        blur_sigma: insertion's starting blur; default ``max(H, W) / 8``.
        sweeps, noise: the ROAD imputer's Jacobi sweeps and noise std.
    """
    maps = getattr(maps, "maps", maps)
    if not isinstance(maps, torch.Tensor) or maps.dim() != 3:
        raise ConfigError("maps must be a (B, h, w) tensor or a CamResult")
    x = as_batch(model, images)
    if maps.shape[0] != x.shape[0]:
        raise ConfigError(f"maps: {maps.shape[0]} maps for {x.shape[0]} images")
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    batch, _, height, width = x.shape
    pixels = height * width
    ranks = _ranks(maps.to(x.device), (height, width))
    fractions = tuple(k / steps for k in range(steps + 1))
    road = tuple(float(f) for f in road_fractions)
    generator = torch.Generator().manual_seed(0)
    with eval_mode(model), torch.no_grad():
        if targets is None:
            chosen = logits_of(model(x)).argmax(dim=1)
        else:
            chosen = torch.as_tensor(list(targets), dtype=torch.long, device=x.device)
            if chosen.shape != (batch,):
                raise ConfigError(f"targets: need one class per image ({batch})")
        blurred = gaussian_blur(x, blur_sigma or max(height, width) / 8)
        deleted, inserted = [], []
        for fraction in fractions:
            top = (ranks < round(fraction * pixels)).view(batch, 1, height, width)
            deleted.append(torch.where(top, torch.zeros_like(x), x))
            inserted.append(torch.where(top, x, blurred))
        repeat = chosen.repeat(len(fractions))
        deletion = _probabilities(model, torch.cat(deleted), repeat).view(-1, batch).T
        insertion = _probabilities(model, torch.cat(inserted), repeat).view(-1, batch).T
        morf, lerf = [], []
        for fraction in road:
            count = round(fraction * pixels)
            most = (ranks < count).view(batch, height, width)
            least = (ranks >= pixels - count).view(batch, height, width)
            morf.append(
                noisy_linear_impute(x, most, sweeps=sweeps, noise=noise, generator=generator)
            )
            lerf.append(
                noisy_linear_impute(x, least, sweeps=sweeps, noise=noise, generator=generator)
            )
        repeat = chosen.repeat(len(road))
        morf_curve = _probabilities(model, torch.cat(morf), repeat).view(-1, batch).T
        lerf_curve = _probabilities(model, torch.cat(lerf), repeat).view(-1, batch).T
    grid = torch.tensor(fractions, dtype=deletion.dtype, device=deletion.device)
    return FaithfulnessResult(
        deletion_auc=torch.trapezoid(deletion, grid, dim=1).float().cpu(),
        insertion_auc=torch.trapezoid(insertion, grid, dim=1).float().cpu(),
        road_morf=morf_curve.mean(dim=1).float().cpu(),
        road_lerf=lerf_curve.mean(dim=1).float().cpu(),
        fractions=fractions,
        road_fractions=road,
        deletion_curve=deletion.float().cpu(),
        insertion_curve=insertion.float().cpu(),
        morf_curve=morf_curve.float().cpu(),
        lerf_curve=lerf_curve.float().cpu(),
        targets=tuple(int(c) for c in chosen),
    )
