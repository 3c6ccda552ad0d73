"""The coverage pattern of a transposed convolution and the checkerboard it causes (002, B4).

002: with stride ``s > 1`` a transposed convolution inserts ``s - 1`` zeros between input
pixels and convolves; "if the kernel size is not divisible by the stride, different output
positions are covered a different number of times: stride=2, kernel=3, coverage pattern
1,2,1,2,1,2,...". The coverage is measured here by applying the operation to an all-ones input
with all-ones weights (each output then counts the input pixels that reach it), next to the
closed form, and for 002's three mitigations: a kernel divisible by the stride, resize + conv,
and conv + pixel shuffle.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from cnnkit.arith.conv import conv_transpose_output_size
from cnnkit.errors import ConfigError
from cnnkit.lab._checks import require_memory
from cnnkit.reference import conv2d, conv_transpose2d, pixel_shuffle


@dataclass(frozen=True)
class UpsamplerCoverage:
    """The interior of one upsampler's output on all-ones input and weights."""

    method: str
    interior_values: tuple[float, ...]  # distinct values, ascending
    interior_row: tuple[float, ...]  # one row through the interior

    @property
    def max_over_min(self) -> float:
        """Largest over smallest interior count; infinite when some outputs get no input."""
        smallest, largest = self.interior_values[0], self.interior_values[-1]
        return largest / smallest if smallest > 0 else math.inf

    @property
    def uniform(self) -> bool:
        return len(self.interior_values) == 1


@dataclass(frozen=True)
class CheckerboardResult:
    kernel_size: int
    stride: int
    size: int
    measured: tuple[int, ...]  # 1-D coverage: conv_transpose of ones
    formula: tuple[int, ...]  # 1-D coverage: closed form
    interior: tuple[int, ...]  # the measured row without its edges
    coverage_map: list[list[int]]  # 2-D coverage of a size x size input
    upsamplers: tuple[UpsamplerCoverage, ...]

    def to_dict(self) -> dict:
        data = asdict(self)
        for entry, upsampler in zip(data["upsamplers"], self.upsamplers, strict=True):
            ratio = upsampler.max_over_min
            entry.update(max_over_min=ratio if math.isfinite(ratio) else None,
                         uniform=upsampler.uniform)  # fmt: skip
        return data


def transposed_coverage(
    length: int, kernel_size: int, stride: int, padding: int = 0
) -> tuple[int, ...]:
    """How many (input, tap) pairs reach each output of a 1-D transposed convolution (002).

    ``count(u) = #{a in [0, k) : (u + p - a) mod s = 0 and 0 <= (u + p - a) / s < n}``, since
    input ``i`` reaches outputs ``i s + a - p``. Output length from
    ``cnnkit.arith.conv.conv_transpose_output_size``.
    """
    (out_length,) = conv_transpose_output_size(length, kernel_size, stride, padding)
    counts = []
    for u in range(out_length):
        sources = [u + padding - a for a in range(kernel_size)]
        counts.append(sum(1 for t in sources if t % stride == 0 and 0 <= t // stride < length))
    return tuple(counts)


def _ones(*shape: int) -> torch.Tensor:
    return torch.ones(*shape, dtype=torch.float64)


def _coverage(method: str, output: torch.Tensor, margin: int, size: int) -> UpsamplerCoverage:
    """The output's values more than ``margin`` pixels from its edges (where zero padding or
    a missing neighbour changes the count)."""
    height, width = output.shape[-2:]
    inner = output[0, 0, margin : height - margin, margin : width - margin]
    if inner.numel() == 0:
        raise ConfigError(
            f"size {size} is too small: {method} leaves no output {margin} pixels from its edges"
        )
    values = tuple(sorted({float(v) for v in inner.flatten().tolist()}))
    return UpsamplerCoverage(method, values, tuple(inner[inner.shape[0] // 2].tolist()))


def checkerboard(kernel_size: int = 3, stride: int = 2, size: int = 8) -> CheckerboardResult:
    """Coverage of a transposed conv with ``kernel_size`` and ``stride`` and of 002's fixes.

    The upsamplers compared, each enlarging a ``size x size`` all-ones image by ``stride``:
    the transposed conv itself; a transposed conv with the kernel rounded up to a multiple of
    the stride (when it is not one already); nearest resize + conv (``kernel_size``, 'same'
    padding); conv to ``s^2`` channels + pixel shuffle. The interior of an output leaves out
    the positions that its edges reach.
    """
    for name, value, smallest in (("kernel_size", kernel_size, 1), ("stride", stride, 1),
                                  ("size", size, 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    k, s = kernel_size, stride
    # the largest tensors: transposed-conv outputs of (size s + k)^2, the resized image, the
    # s^2 feature maps before the pixel shuffle, and the k^2 kernels (float64)
    out = size * s + k
    require_memory(
        4 * out * out + 3 * s * s * size * size + 4 * k * k * s * s,
        f"kernel_size {k}, stride {s}, size {size}",
    )
    measured_1d = conv_transpose2d(_ones(1, 1, 1, size), _ones(1, 1, 1, k), stride=(1, s))
    measured = tuple(int(v) for v in measured_1d.flatten().tolist())
    coverage_map = conv_transpose2d(_ones(1, 1, size, size), _ones(1, 1, k, k), stride=s)
    # Edge effects reach k - 1 outputs into a transposed conv; a 'same'-padded conv's reach
    # k // 2 positions, times s after a pixel shuffle.
    upsamplers = [_coverage(f"transposed conv k={k} s={s}", coverage_map, k - 1, size)]
    divisible = math.ceil(k / s) * s
    if divisible != k:
        rounded = conv_transpose2d(
            _ones(1, 1, size, size), _ones(1, 1, divisible, divisible), stride=s
        )
        method = f"transposed conv k={divisible} s={s} (k divisible by s)"
        upsamplers.append(_coverage(method, rounded, divisible - 1, size))
    same = (k - 1) // 2
    resized = _ones(1, 1, size, size).repeat_interleave(s, dim=2).repeat_interleave(s, dim=3)
    resize_conv = conv2d(resized, _ones(1, 1, k, k), padding=same)
    upsamplers.append(_coverage(f"nearest resize x{s} + conv {k}x{k}", resize_conv, k // 2, size))
    features = conv2d(_ones(1, 1, size, size), _ones(s * s, 1, k, k), padding=same)
    method = f"conv {k}x{k} to {s * s} channels + pixel shuffle x{s}"
    upsamplers.append(_coverage(method, pixel_shuffle(features, s), (k // 2) * s, size))
    return CheckerboardResult(
        kernel_size=k,
        stride=s,
        size=size,
        measured=measured,
        formula=transposed_coverage(size, k, s),
        interior=measured[k - 1 : len(measured) - (k - 1)],
        coverage_map=[[int(v) for v in row] for row in coverage_map[0, 0].tolist()],
        upsamplers=tuple(upsamplers),
    )
