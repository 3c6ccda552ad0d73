"""Four ways to compute one convolution, measured: error, time and peak memory (002, B2).

For each layer shape, every method of :func:`cnnkit.reference.conv2d` (loop, im2col, fft,
winograd) runs next to ``torch.nn.functional.conv2d`` (the anchor). Reported per method:

- the largest absolute difference from ``torch.nn.functional.conv2d`` computed in float64;
- the median time over interleaved runs (methods alternate, so load on a shared machine hits
  them alike), as wall time and as the process's CPU time; the ratio to torch's uses CPU time,
  which other jobs on the machine do not inflate (with one thread it is the wall time of an idle
  machine, with several it sums the threads);
- the peak of extra memory: bytes live at once during the call beyond the output, measured with
  ``torch.profiler`` (:mod:`cnnkit.analysis.memory`); for im2col it is 002's "memory bill",
  ``N C_in kH kW H_out W_out`` elements, next to which the formula's figure is printed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from cnnkit.analysis.memory import peak_allocated_bytes, tensor_bytes
from cnnkit.arith.conv import conv_macs, conv_output_size
from cnnkit.arith.limits import check_fits_in_memory
from cnnkit.arith.memory import im2col_bytes
from cnnkit.errors import ConfigError, ShapeError, UnsupportedError
from cnnkit.reference import METHODS, conv2d, winograd_multiply_count
from cnnkit.reference.winograd import MultiplyCount

ANCHOR = "torch"
ALL_METHODS: tuple[str, ...] = (ANCHOR, *METHODS)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class ConvShape:
    """One convolution layer: input (N, C_in, H, W), C_out, square kernel, stride, padding."""

    batch: int
    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    name: str = ""

    @property
    def label(self) -> str:
        layer = (
            f"{self.in_channels}x{self.height}x{self.width}->{self.out_channels} "
            f"k{self.kernel_size} s{self.stride} p{self.padding}"
        )
        batch = f" N={self.batch}" if self.batch != 1 else ""
        return f"{self.name} ({layer}{batch})" if self.name else layer + batch

    @property
    def output_size(self) -> tuple[int, int]:
        size = conv_output_size(
            (self.height, self.width), self.kernel_size, self.stride, self.padding
        )
        return (size[0], size[1])


# ResNet-18 at 224x224 (torchvision's layer names), one image.
RESNET18_SHAPES: tuple[ConvShape, ...] = (
    ConvShape(1, 3, 224, 224, 64, 7, 2, 3, "conv1"),
    ConvShape(1, 64, 56, 56, 64, 3, 1, 1, "layer1.0.conv1"),
    ConvShape(1, 64, 56, 56, 128, 3, 2, 1, "layer2.0.conv1"),
    ConvShape(1, 64, 56, 56, 128, 1, 2, 0, "layer2.0.downsample.0"),
    ConvShape(1, 128, 28, 28, 128, 3, 1, 1, "layer2.0.conv2"),
    ConvShape(1, 256, 14, 14, 256, 3, 1, 1, "layer3.0.conv2"),
    ConvShape(1, 512, 7, 7, 512, 3, 1, 1, "layer4.0.conv2"),
)
SMALL_SHAPES: tuple[ConvShape, ...] = (
    ConvShape(1, 16, 32, 32, 32, 3, 1, 1),
    ConvShape(1, 16, 32, 32, 32, 3, 2, 1),
)


@dataclass(frozen=True)
class Measurement:
    """One method on one shape; ``note`` says why a method did not run."""

    shape: str
    method: str
    max_error: float | None
    seconds: float | None  # median wall time
    cpu_seconds: float | None  # median CPU time of the process
    time_vs_torch: float | None  # cpu_seconds / torch's cpu_seconds
    peak_extra_bytes: int | None
    runs: int
    note: str = ""


@dataclass(frozen=True)
class ShapeFigures:
    """Figures of a shape computed by formula: MACs, the im2col bill, Winograd's multiplies."""

    shape: ConvShape
    output_size: tuple[int, int]
    macs: int
    im2col_bytes: int
    winograd: MultiplyCount | None


@dataclass(frozen=True)
class ConvAlgorithmsResult:
    dtype: str
    threads: int
    repeats: int
    figures: tuple[ShapeFigures, ...]
    measurements: tuple[Measurement, ...]

    def to_dict(self) -> dict:
        data = asdict(self)
        for entry, figures in zip(data["figures"], self.figures, strict=True):
            entry["shape"]["label"] = figures.shape.label
            if figures.winograd is not None:
                entry["winograd"]["ratio"] = figures.winograd.ratio
        return data


def _figures(shape: ConvShape, element_bytes: int) -> ShapeFigures:
    output = shape.output_size
    winograd = None
    if shape.kernel_size == 3 and shape.stride == 1:
        winograd = winograd_multiply_count(output, shape.in_channels, shape.out_channels, 1,
                                           shape.batch)  # fmt: skip
    return ShapeFigures(
        shape=shape,
        output_size=output,
        macs=conv_macs(
            shape.in_channels, shape.out_channels, shape.kernel_size, output, 1, shape.batch
        ),
        im2col_bytes=im2col_bytes(
            shape.batch, shape.in_channels, shape.kernel_size, output, element_bytes
        ),
        winograd=winograd,
    )


def _bytes_needed(
    shape: ConvShape, figures: ShapeFigures, element_bytes: int, methods: Sequence[str]
) -> int:
    """A lower bound of the bytes a shape's measurement holds at once: input, weights and the
    exact output in float64, their copies in the measured dtype, and the largest method's work
    space (the im2col matrix when im2col runs, else one more output)."""
    height, width = figures.output_size
    inputs = shape.batch * shape.in_channels * shape.height * shape.width
    weights = shape.out_channels * shape.in_channels * shape.kernel_size**2
    outputs = shape.batch * shape.out_channels * height * width
    work = figures.im2col_bytes if "im2col" in methods else outputs * element_bytes
    return 8 * (inputs + weights + outputs) + element_bytes * (inputs + weights) + work


def _callable(method: str, x: torch.Tensor, weight: torch.Tensor, shape: ConvShape) -> Callable:
    stride, padding = shape.stride, shape.padding
    if method == ANCHOR:
        return lambda: F.conv2d(x, weight, stride=stride, padding=padding)
    # the method names come from METHODS, the reference conv's own registry
    return lambda: conv2d(x, weight, stride=stride, padding=padding, method=method)  # type: ignore[arg-type]


def _measure_shape(
    shape: ConvShape, methods: Sequence[str], dtype: torch.dtype, repeats: int, budget: float
) -> list[Measurement]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape.batch, shape.in_channels, shape.height, shape.width,
                    generator=generator, dtype=torch.float64)  # fmt: skip
    weight = torch.randn(shape.out_channels, shape.in_channels, shape.kernel_size,
                         shape.kernel_size, generator=generator, dtype=torch.float64)  # fmt: skip
    exact = F.conv2d(x, weight, stride=shape.stride, padding=shape.padding)
    x, weight = x.to(dtype), weight.to(dtype)
    runnable, errors, peaks, first, refused = {}, {}, {}, {}, {}
    for method in methods:
        function = _callable(method, x, weight, shape)
        try:
            start = time.perf_counter()
            output, peak = peak_allocated_bytes(function)
            first[method] = time.perf_counter() - start
        except UnsupportedError as error:
            refused[method] = f"refused: {str(error).split(': ', 1)[-1]}"
            continue
        runnable[method] = function
        errors[method] = float((output.double() - exact).abs().max())
        peaks[method] = max(0, peak - tensor_bytes(output))
    # Interleave: run every method once per round, so that a busy machine slows all alike.
    budget_runs = {m: max(1, min(repeats, int(budget / max(first[m], 1e-9)))) for m in runnable}
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in runnable}
    for round_index in range(max(budget_runs.values(), default=0)):
        for method, function in runnable.items():
            if round_index < budget_runs[method]:
                wall, cpu = time.perf_counter(), time.process_time()
                function()
                times[method].append((time.perf_counter() - wall, time.process_time() - cpu))
    walls = {m: statistics.median(w for w, _ in t) for m, t in times.items()}
    cpus = {m: statistics.median(c for _, c in t) for m, t in times.items()}
    anchor = cpus.get(ANCHOR)
    rows = []
    for method in methods:
        if method in refused:
            rows.append(
                Measurement(shape.label, method, None, None, None, None, None, 0, refused[method])
            )
            continue
        ratio = cpus[method] / anchor if anchor else None
        runs = len(times[method])
        rows.append(
            Measurement(
                shape.label,
                method,
                errors[method],
                walls[method],
                cpus[method],
                ratio,
                peaks[method],
                runs,
            )
        )
    return rows


def conv_algorithms(
    shapes: Sequence[ConvShape] = SMALL_SHAPES,
    methods: Sequence[str] = ALL_METHODS,
    dtype: str = "float32",
    repeats: int = 5,
    budget_seconds: float = 2.0,
) -> ConvAlgorithmsResult:
    """Measure each method on each shape against ``torch.nn.functional.conv2d`` (002, B2).

    Every method runs once under the profiler (error and peak memory), then up to ``repeats``
    timed rounds, fewer for a method whose first run took more than ``budget_seconds /
    repeats`` (the loop method on large layers). Inputs are seeded ``torch.Generator`` draws.
    """
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ConfigError(f"unknown method {unknown[0]!r}; choose from {', '.join(ALL_METHODS)}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"repeats must be a positive integer, got {repeats!r}")
    if not shapes:
        raise ConfigError("give at least one shape")
    torch_dtype = DTYPES[dtype]
    element_bytes = torch.empty((), dtype=torch_dtype).element_size()
    figures = []
    for shape in shapes:  # computing the figures validates the shape
        try:
            figures.append(_figures(shape, element_bytes))
        except (ConfigError, ShapeError) as error:
            raise type(error)(f"shape {shape.label}: {error}") from None
    for shape, shape_figures in zip(shapes, figures, strict=True):  # before allocating any
        check_fits_in_memory(
            _bytes_needed(shape, shape_figures, element_bytes, methods), f"shape {shape.label}"
        )
    measurements = [
        row
        for shape in shapes
        for row in _measure_shape(shape, methods, torch_dtype, repeats, budget_seconds)
    ]
    return ConvAlgorithmsResult(
        dtype=dtype,
        threads=torch.get_num_threads(),
        repeats=repeats,
        figures=tuple(figures),
        measurements=tuple(measurements),
    )
