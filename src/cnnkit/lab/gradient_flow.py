"""Gradient flow through 50 blocks with and without residual connections (001, 003, B7).

002: for ``y = x + F(x)``, ``dL/dx = dL/dy + (dF/dx)^T dL/dy``: the identity path carries the
gradient even when ``F``'s Jacobian is small. Two experiments from the seeds, each built twice
(with and without the skip connection) from the same seed:

- ``conv`` (001 example 3): blocks ``conv3x3 -> BN -> ReLU -> conv3x3 -> BN, + x, ReLU`` with 64
  channels, against plain ``conv3x3 -> ReLU`` blocks, on a (2, 64, 8, 8) input;
- ``linear`` (003 section 8): blocks ``Linear(10, 10) -> ReLU -> Linear(10, 10) -> ReLU``, with
  ``+ x`` or without, on a (1, 10) input.

The loss is ``output.sum()`` (both seeds). The gradient norm is measured at the input of every
block (block 1 is nearest the input, where a vanishing gradient is smallest) and, like 003, at
each block's first weight. The blocks are the seeds' own definitions, kept here so that the
experiment is exactly theirs (torchvision's BasicBlock has no conv bias).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from cnnkit._io import figure_format
from cnnkit.errors import ConfigError
from cnnkit.lab._checks import require_memory, require_seed
from cnnkit.lab.gradient_flow_plot import write_plot

EXPERIMENTS = ("conv", "linear")


class SeedResidualBlock(nn.Module):
    """001's ``ResidualBlock(channels)``: conv-BN-ReLU-conv-BN, plus the input, then ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + x)


class SeedLinearBlock(nn.Module):
    """003's ``WithResidual`` / ``WithoutResidual``: (Linear(10, 10), ReLU) x 2, ``+ x`` or not."""

    def __init__(self, residual: bool, features: int = 10) -> None:
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            nn.Linear(features, features), nn.ReLU(), nn.Linear(features, features), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return out + x if self.residual else out


def _blocks(experiment: str, residual: bool, count: int) -> nn.ModuleList:
    if experiment == "linear":
        return nn.ModuleList(SeedLinearBlock(residual) for _ in range(count))
    if residual:
        return nn.ModuleList(SeedResidualBlock(64) for _ in range(count))
    plain = (nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU()) for _ in range(count))
    return nn.ModuleList(plain)


def _bytes_per_block(experiment: str) -> int:
    """Bytes one block holds during the measurement: its parameters and their gradients, and
    about ten activations of the input's size (float32), kept for the backward pass."""
    block = _blocks(experiment, True, 1)[0]
    parameters = sum(p.numel() for p in block.parameters())
    activation = 2 * 64 * 8 * 8 if experiment == "conv" else 10
    return 4 * (2 * parameters + 10 * activation)


@dataclass(frozen=True)
class GradientCurve:
    """Gradient norms per block, block 1 first (nearest the input)."""

    experiment: str
    residual: bool
    input_gradient_norms: tuple[float, ...]  # ||dL/d(input of block i)||
    weight_gradient_norms: tuple[float, ...]  # ||dL/d(first weight of block i)||


@dataclass(frozen=True)
class GradientFlowResult:
    blocks: int
    seed: int
    curves: tuple[GradientCurve, ...]
    image: str | None = None

    def curve(self, experiment: str, residual: bool) -> GradientCurve:
        return next(c for c in self.curves if c.experiment == experiment and c.residual == residual)

    def to_dict(self) -> dict:
        return asdict(self)


def _measure(experiment: str, residual: bool, blocks: int, seed: int) -> GradientCurve:
    # fork_rng: the experiment seeds its own draws without changing the caller's RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = _blocks(experiment, residual, blocks)
        shape = (2, 64, 8, 8) if experiment == "conv" else (1, 10)
        out = torch.randn(shape).requires_grad_(True)
    inputs = []
    for block in layers:
        out.retain_grad()  # keep dL/d(input of this block)
        inputs.append(out)
        out = block(out)
    out.sum().backward()
    first_weights = [next(block.parameters()) for block in layers]
    return GradientCurve(
        experiment=experiment,
        residual=residual,
        input_gradient_norms=tuple(float(t.grad.norm()) for t in inputs),
        weight_gradient_norms=tuple(float(w.grad.norm()) for w in first_weights),
    )


def gradient_flow(
    blocks: int = 50,
    seed: int = 0,
    experiments: tuple[str, ...] = EXPERIMENTS,
    image_path: str | Path | None = None,
) -> GradientFlowResult:
    """Run 001's (``conv``) and 003's (``linear``) experiment with and without residuals.

    Returns the gradient norm at every block's input and first weight; with ``image_path``,
    also writes a plot of the norms per block on a log scale, atomically, as PNG, SVG or PDF
    by the path's suffix (matplotlib's Figure API, Agg canvas).
    """
    if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
        raise ConfigError(f"blocks must be a positive integer, got {blocks!r}")
    for experiment in experiments:
        if experiment not in EXPERIMENTS:
            raise ConfigError(f"unknown experiment {experiment!r}; choose from conv, linear")
    if image_path is not None:
        figure_format(image_path)  # a wrong suffix fails now, not after the measurement
    require_seed(seed)
    for experiment in experiments:
        require_memory(blocks * _bytes_per_block(experiment), f"blocks {blocks} ({experiment})", 1)
    curves = tuple(
        _measure(experiment, residual, blocks, seed)
        for experiment in experiments
        for residual in (True, False)
    )
    result = GradientFlowResult(blocks=blocks, seed=seed, curves=curves)
    if image_path is not None:
        write_plot(result, image_path)
        result = GradientFlowResult(blocks, seed, curves, str(image_path))
    return result
