"""Translation equivariance, and what breaks it: padding, stride and pooling (002, B5).

002: a map ``F`` is translation equivariant if ``F(T_d x) = T_d F(x)`` with
``(T_d X)[i, j] = X[i + d_1, j + d_2]``; cross-correlation is, "for infinite or properly padded
grids". On a finite image the shift ``T`` is circular here (the image is a torus), so a
convolution with *circular* padding is exactly equivariant for every shift. Zero padding breaks
it at the border (the padding moves with the image edge), a stride of 2 keeps it only for shifts
divisible by 2 (then ``T' = T_{d/2}`` on the output), and so does a 2x2 max pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from cnnkit.errors import ConfigError
from cnnkit.lab._checks import require_memory, require_seed
from cnnkit.reference import conv2d, max_pool2d

DEFAULT_SHIFTS: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 2), (3, 1))
TOLERANCE = 1e-12  # relative, float64


@dataclass(frozen=True)
class EquivarianceRow:
    """``F(T_shift x)`` against ``T_output_shift F(x)`` for one operation and one shift.

    ``max_error`` is ``max |F(T x) - T' F(x)| / max |F(x)|``; ``differing`` the fraction of
    output pixels that differ by more than the tolerance. When no output shift corresponds
    exactly (``exact_shift`` False), ``output_shift`` is the better of the shifts next to
    ``shift / stride`` (rounded down or up per axis).
    ``error_away_from_border`` (zero padding only) ignores pixels whose window reaches the image
    border before or after the shift.
    """

    operation: str
    shift: tuple[int, int]
    output_shift: tuple[int, int]
    exact_shift: bool
    max_error: float
    differing: float
    error_away_from_border: float | None
    equivariant: bool


@dataclass(frozen=True)
class EquivarianceResult:
    size: int
    channels: int
    seed: int
    rows: tuple[EquivarianceRow, ...]

    def to_dict(self) -> dict:
        return asdict(self)


def _translate(x: torch.Tensor, shift: Sequence[int]) -> torch.Tensor:
    """002's ``(T_d X)[i, j] = X[i + d_1, j + d_2]``, circularly."""
    return torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(-2, -1))


def _operations(weight: torch.Tensor) -> list[tuple[str, int, Callable, int]]:
    """(name, stride, F, border radius) for each operation compared."""

    def circular(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (1, 1, 1, 1), mode="circular")

    return [
        ("conv 3x3, circular padding", 1, lambda x: conv2d(circular(x), weight), 0),
        ("conv 3x3, zero padding", 1, lambda x: conv2d(x, weight, padding=1), 1),
        ("conv 3x3 stride 2, circular", 2,
         lambda x: conv2d(circular(x), weight, stride=2), 0),
        ("max-pool 2x2 stride 2", 2, lambda x: max_pool2d(x, 2), 0),
    ]  # fmt: skip


def _border_mask(size: int, shift: Sequence[int], radius: int) -> torch.Tensor:
    """Output pixels whose window reaches the image edge, in shifted or original position."""
    index = torch.arange(size)

    def near_edge(positions: torch.Tensor) -> torch.Tensor:
        return (positions < radius) | (positions >= size - radius)

    rows = near_edge(index) | near_edge((index + shift[0]) % size)
    columns = near_edge(index) | near_edge((index + shift[1]) % size)
    return rows[:, None] | columns[None, :]


def _compare(
    name: str, stride: int, operation: Callable, radius: int, x: torch.Tensor, shift: tuple
) -> EquivarianceRow:
    reference = operation(x)
    moved = operation(_translate(x, shift))
    scale = float(reference.abs().max())
    exact = shift[0] % stride == 0 and shift[1] % stride == 0
    if exact:
        candidates = [(shift[0] // stride, shift[1] // stride)]
    else:  # no output shift corresponds: try the neighbours of shift / stride
        rows = {shift[0] // stride, -(-shift[0] // stride)}
        columns = {shift[1] // stride, -(-shift[1] // stride)}
        candidates = sorted((i, j) for i in rows for j in columns)
    errors = {c: (moved - _translate(reference, c)).abs() / scale for c in candidates}
    output_shift = min(errors, key=lambda c: float(errors[c].max()))
    error = errors[output_shift].amax(dim=(0, 1))  # (H_out, W_out)
    away = None
    if radius:
        mask = _border_mask(error.shape[-1], shift, radius)
        away = float(error[~mask].max()) if bool((~mask).any()) else 0.0
    return EquivarianceRow(
        operation=name,
        shift=tuple(shift),
        output_shift=output_shift,
        exact_shift=exact,
        max_error=float(error.max()),
        differing=float((error > TOLERANCE).double().mean()),
        error_away_from_border=away,
        equivariant=float(error.max()) <= TOLERANCE,
    )


def equivariance(
    size: int = 16,
    shifts: Sequence[tuple[int, int]] = DEFAULT_SHIFTS,
    channels: int = 3,
    seed: int = 0,
) -> EquivarianceResult:
    """Measure ``F(T x)`` against ``T' F(x)`` for four operations and the given shifts (002, B5).

    The image (1, ``channels``, ``size``, ``size``) and the 3x3 kernels (4 output channels) are
    float64 draws from ``torch.Generator`` seeded with ``seed``. ``size`` must be even, so that
    a stride-2 grid tiles the torus.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 4 or size % 2:
        raise ConfigError(f"size must be an even integer >= 4, got {size!r}")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ConfigError(f"channels must be a positive integer, got {channels!r}")
    require_seed(seed)
    # the image, four output maps, their shifted copies and differences, in float64
    require_memory((channels + 4 * 4) * size * size, f"size {size} with {channels} channels")
    shifts = [tuple(s) for s in shifts]  # type: ignore[misc]  # pairs: checked on the next lines
    for shift in shifts:
        if len(shift) != 2 or not all(isinstance(v, int) and 0 <= v < size for v in shift):
            raise ConfigError(f"a shift must be two integers in [0, {size}), got {shift!r}")
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, channels, size, size, generator=generator, dtype=torch.float64)
    weight = torch.randn(4, channels, 3, 3, generator=generator, dtype=torch.float64)
    rows = [
        _compare(name, stride, operation, radius, x, shift)
        for name, stride, operation, radius in _operations(weight)
        for shift in shifts
    ]
    return EquivarianceResult(size=size, channels=channels, seed=seed, rows=tuple(rows))
