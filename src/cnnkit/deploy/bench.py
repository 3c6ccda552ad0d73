"""Inference benchmark: latency and throughput per variant, batch size and threads (G3).

Seed 002 leaves memory format and precision on CPU as "benchmark required"; this measures them
on the user's own model. Each variant is prepared once (folding, export, quantization,
compilation: its cost reported apart), warmed up, then timed call by call: p50/p90/p99 latency
and throughput = batch / mean latency. The load average before and after is recorded, since a
shared machine changes every figure.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnkit._registry import Registry
from cnnkit.errors import ConfigError
from cnnkit.runtime import cpu_has_bf16, cpu_model, to_memory_format

Call = Callable[[], Any]


@dataclass
class Prepared:
    """A variant ready to time: ``make(batch, threads)`` returns a zero-argument call."""

    precision: str
    make: Callable[[int, int], Call]
    setup_seconds: float = 0.0
    note: str | None = None


@dataclass(frozen=True)
class Measurement:
    """One variant at one batch size and thread count (times in milliseconds)."""

    variant: str
    precision: str
    batch_size: int
    threads: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    throughput: float
    repeats: int
    first_call_ms: float
    min_ms: float = 0.0  # the uncontended time on a loaded machine, where p50 waits for a core


@dataclass
class BenchResult:
    """Every measurement of one :func:`benchmark` run, the variants skipped and why, the
    preparation cost of each variant (``torch.compile``'s compile time among them), and the
    machine with its load average before and after."""

    model: str
    input_shape: tuple[int, ...]
    measurements: list[Measurement]
    skipped: dict[str, str]
    setup_seconds: dict[str, float]
    notes: dict[str, str]
    machine: dict[str, Any]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    settings: dict[str, Any] = field(default_factory=dict)

    def fastest(self) -> list[Measurement]:
        """The lowest-p50 measurement per (batch size, threads)."""
        best: dict[tuple[int, int], Measurement] = {}
        for m in self.measurements:
            key = (m.batch_size, m.threads)
            if key not in best or m.p50_ms < best[key].p50_ms:
                best[key] = m
        return [best[key] for key in sorted(best)]

    def speedup(self, variant: str, over: str = "eager") -> dict[tuple[int, int], float]:
        """p50 of ``over`` / p50 of ``variant`` per (batch size, threads)."""
        p50 = {(m.variant, m.batch_size, m.threads): m.p50_ms for m in self.measurements}
        return {
            (b, t): p50[(over, b, t)] / value
            for (name, b, t), value in p50.items()
            if name == variant and (over, b, t) in p50 and value > 0
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "measurements": [asdict(m) for m in self.measurements],
            "fastest": [asdict(m) for m in self.fastest()],
            "skipped": self.skipped,
            "setup_seconds": self.setup_seconds,
            "notes": self.notes,
            "machine": self.machine,
            "load_before": list(self.load_before),
            "load_after": list(self.load_after),
            "settings": self.settings,
        }


# name -> prepare(model, shape, context) -> Prepared, or raises SkipVariant; context holds the
# int8 calibration inputs and the fp32 ONNX bytes once exported
VARIANTS: Registry[Callable[..., Prepared]] = Registry("benchmark variant")
DEFAULT_VARIANTS = ("eager", "channels_last", "bf16", "folded", "compile", "ort_fp32", "ort_int8")


class SkipVariant(Exception):
    """A variant that cannot run here (no bf16 on this CPU, no onnx extra, ...)."""


def _torch_call(model: nn.Module, shape: tuple[int, ...], memory_format: Any = None,
                dtype: torch.dtype | None = None) -> Callable[[int, int], Call]:  # fmt: skip
    def make(batch: int, threads: int) -> Call:
        x = torch.randn(batch, *shape)
        if memory_format is not None:
            x = x.contiguous(memory_format=memory_format)

        def call() -> Any:
            with torch.inference_mode(), torch.autocast("cpu", dtype or torch.bfloat16,
                                                          enabled=dtype is not None):  # fmt: skip
                return model(x)

        return call

    return make


@VARIANTS.register("eager")
def _eager(model: nn.Module, shape: tuple[int, ...], context: dict[str, Any]) -> Prepared:
    return Prepared("fp32", _torch_call(model, shape))


@VARIANTS.register("channels_last")
def _channels_last(model: nn.Module, shape: tuple[int, ...], context: dict[str, Any]) -> Prepared:
    if len(shape) != 3:
        raise SkipVariant("channels_last needs a 4-D (N, C, H, W) input")
    moved = to_memory_format(copy.deepcopy(model), channels_last=True)
    return Prepared("fp32", _torch_call(moved, shape, memory_format=torch.channels_last))


@VARIANTS.register("bf16")
def _bf16(model: nn.Module, shape: tuple[int, ...], context: dict[str, Any]) -> Prepared:
    if not cpu_has_bf16():
        raise SkipVariant("this CPU has no native bf16 (avx512_bf16/amx): autocast is emulated")
    make = _torch_call(model, shape, dtype=torch.bfloat16)
    out = make(1, torch.get_num_threads())()
    ran = out.dtype if isinstance(out, torch.Tensor) else None
    precision = "bf16 autocast" if ran == torch.bfloat16 else f"{ran} (autocast changed nothing)"
    return Prepared(precision, make)


@VARIANTS.register("folded")
def _folded(model: nn.Module, shape: tuple[int, ...], context: dict[str, Any]) -> Prepared:
    from cnnkit.deploy.fold import fold_batchnorm

    start = time.perf_counter()
    result = fold_batchnorm(model, shape, batch_size=1)
    note = (
        f"{len(result.folded)} of {result.batch_norms} BN folded, max error {result.max_error:.1e}"
    )
    return Prepared("fp32", _torch_call(result.model, shape), time.perf_counter() - start, note)


@VARIANTS.register("compile")
def _compile(model: nn.Module, shape: tuple[int, ...], context: dict[str, Any]) -> Prepared:
    compiled = torch.compile(copy.deepcopy(model), dynamic=False)
    compile_time: dict[str, float] = {}

    def make(batch: int, threads: int) -> Call:
        x = torch.randn(batch, *shape)

        def call() -> Any:
            with torch.inference_mode():
                return compiled(x)

        start = time.perf_counter()
        call()  # compiles for this batch size; timed apart from the latency
        compile_time[f"batch {batch}"] = time.perf_counter() - start
        return call

    prepared = Prepared("fp32", make)
    prepared.note = "compile time per batch size is in setup_seconds"
    prepared.compile_times = compile_time  # type: ignore[attr-defined]  # an attribute the benchmark adds to its own Prepared record
    return prepared


def _onnx_bytes(model: nn.Module, shape: tuple[int, ...], context: dict[str, Any]) -> bytes:
    """The fp32 ONNX model, exported once per benchmark (fp32 and int8 share it)."""
    from cnnkit.deploy._onnx_stack import require
    from cnnkit.deploy.onnx_export import export_bytes

    if "onnx" in context:
        return context["onnx"]
    for name in ("onnx", "onnxruntime", "onnxscript"):
        try:
            require(name)
        except Exception as error:
            raise SkipVariant(str(error)) from None
    data, _ = export_bytes(model, shape, True, None, [])
    context["onnx"] = data
    return data


def _ort_make(data: bytes, shape: tuple[int, ...]) -> Callable[[int, int], Call]:
    from cnnkit.deploy._onnx_stack import session

    sessions: dict[int, Any] = {}

    def make(batch: int, threads: int) -> Call:
        if threads not in sessions:
            sessions[threads] = session(data, threads)
        runner = sessions[threads]
        feed = {runner.get_inputs()[0].name: torch.randn(batch, *shape).numpy()}
        return lambda: runner.run(None, feed)

    return make


@VARIANTS.register("ort_fp32")
def _ort_fp32(model: nn.Module, shape: tuple[int, ...], context: dict[str, Any]) -> Prepared:
    start = time.perf_counter()
    data = _onnx_bytes(model, shape, context)
    return Prepared("fp32", _ort_make(data, shape), time.perf_counter() - start)


@VARIANTS.register("ort_int8")
def _ort_int8(model: nn.Module, shape: tuple[int, ...], context: dict[str, Any]) -> Prepared:
    from cnnkit.deploy.quantize import quantize_int8

    start = time.perf_counter()
    data = _onnx_bytes(model, shape, context)
    note = None
    calibration = context.get("calibration")
    if calibration is None:
        calibration = torch.randn(32, *shape, generator=torch.Generator().manual_seed(0))
        note = "calibrated on random inputs (give a checkpoint for real images)"
    quantized = quantize_int8(data, calibration)
    return Prepared("int8 (QDQ)", _ort_make(quantized, shape), time.perf_counter() - start, note)


def time_call(call: Call, warmup: int, repeats: int) -> tuple[list[float], float]:
    """Per-call wall times in milliseconds after ``warmup`` calls, and the first call's time."""
    start = time.perf_counter()
    call()
    first = (time.perf_counter() - start) * 1e3
    for _ in range(max(warmup - 1, 0)):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return times, first


def time_interleaved(
    calls: dict[str, Call], warmup: int, repeats: int
) -> dict[str, tuple[list[float], float]]:
    """:func:`time_call` for several calls at once, taking turns call by call, so that a load
    that comes and goes on a shared machine falls on every variant alike."""
    first: dict[str, float] = {}
    for name, call in calls.items():
        start = time.perf_counter()
        call()
        first[name] = (time.perf_counter() - start) * 1e3
    for _ in range(max(warmup - 1, 0)):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: (times[name], first[name]) for name in calls}


def benchmark(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    name: str = "model",
    batch_sizes: Sequence[int] = (1, 8, 64),
    threads: Sequence[int] | None = None,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    warmup: int = 5,
    repeats: int = 30,
    calibration: torch.Tensor | None = None,
) -> BenchResult:
    """Time ``model`` (eval-mode copy; the model is left as found) in each variant.

    Latency percentiles are numpy's (linear interpolation) over ``repeats`` timed calls after
    ``warmup`` untimed ones, the variants taking turns call by call (:func:`time_interleaved`);
    throughput = batch size / mean latency, in images per second.

    Args:
        input_shape: one sample's shape without the batch.
        threads: intra-op thread counts (default: 1 and all of torch's).
        variants: names in :data:`VARIANTS` (eager, channels_last, bf16, folded, compile,
            ort_fp32, ort_int8).
        calibration: inputs for int8 calibration (default: 32 random ones).
    """
    shape = tuple(int(v) for v in input_shape)
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise ConfigError(f"batch sizes must be >= 1, got {list(batch_sizes)}")
    if warmup < 1 or repeats < 1:
        raise ConfigError("warmup and repeats must be >= 1")
    all_threads = torch.get_num_threads()
    thread_counts = sorted(set(threads or (1, all_threads)))
    for name_ in variants:
        VARIANTS.get(name_)  # unknown names fail before anything is measured
    work = copy.deepcopy(model).eval()
    load_before = os.getloadavg()
    measurements: list[Measurement] = []
    skipped: dict[str, str] = {}
    setup: dict[str, float] = {}
    notes: dict[str, str] = {}
    context: dict[str, Any] = {"calibration": calibration}
    ready: dict[str, Prepared] = {}
    for variant in variants:
        try:
            ready[variant] = VARIANTS.get(variant)(work, shape, context)
        except SkipVariant as reason:
            skipped[variant] = str(reason)
        except Exception as error:  # a variant failing must not lose the others' figures
            skipped[variant] = f"failed: {type(error).__name__}: {str(error).splitlines()[0]}"
    for variant, prepared in ready.items():
        setup[variant] = prepared.setup_seconds
        if prepared.note:
            notes[variant] = prepared.note
    try:
        for count in thread_counts:
            torch.set_num_threads(count)
            for batch in batch_sizes:
                calls = {v: p.make(batch, count) for v, p in ready.items()}
                timed = time_interleaved(calls, warmup, repeats)
                for variant, (times, first) in timed.items():
                    measurements.append(
                        _measurement(variant, ready[variant], batch, count, times, first)
                    )
    finally:
        torch.set_num_threads(all_threads)
    for variant, prepared in ready.items():
        for key, seconds in getattr(prepared, "compile_times", {}).items():
            setup[f"{variant} {key}"] = seconds
    return BenchResult(
        model=name,
        input_shape=shape,
        measurements=measurements,
        skipped=skipped,
        setup_seconds=setup,
        notes=notes,
        machine=machine(),
        load_before=load_before,
        load_after=os.getloadavg(),
        settings={
            "warmup": warmup,
            "repeats": repeats,
            "batch_sizes": list(batch_sizes),
            "threads": thread_counts,
        },
    )


def _measurement(
    variant: str, prepared: Prepared, batch: int, threads: int, times: list[float], first: float
) -> Measurement:
    values = np.asarray(times)
    mean = float(values.mean())
    return Measurement(
        variant=variant,
        precision=prepared.precision,
        batch_size=batch,
        threads=threads,
        p50_ms=float(np.percentile(values, 50)),
        p90_ms=float(np.percentile(values, 90)),
        p99_ms=float(np.percentile(values, 99)),
        mean_ms=mean,
        throughput=batch / mean * 1e3,
        repeats=len(times),
        first_call_ms=first,
        min_ms=float(values.min()),
    )


def machine() -> dict[str, Any]:
    """CPU model, core count, bf16 support and library versions."""
    cpu = cpu_model()
    versions = {"torch": torch.__version__}
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "bf16": cpu_has_bf16(), **versions}
