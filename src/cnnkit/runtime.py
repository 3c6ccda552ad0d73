"""Where and how a run computes: device, autocast precision, threads, seeds, determinism."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import random
from pathlib import Path

import torch

from cnnkit.errors import ConfigError, UnsupportedError


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; an unavailable CUDA device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device: unknown device {name!r} (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UnsupportedError(f"--device {name}: CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise UnsupportedError(f"--device {name}: only cpu and cuda are supported")
    return device


@functools.cache
def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (AVX-512 BF16 or AMX), read from cpuinfo.

    Without it, autocast to bf16 on CPU is emulated and slower than fp32.
    """
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or ``None`` for full fp32.

    ``auto``: bf16 on CUDA devices that support it (else fp16) and on CPUs with bf16 units
    (measured 1.5-2x faster for conv models here, docs/benchmarks.md), fp32 otherwise.
    """
    if precision == "off":
        return None
    if precision == "fp16":
        if device.type != "cuda":
            raise UnsupportedError(
                "--precision fp16: float16 autocast is for CUDA; use bf16 on CPU"
            )
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype``, or a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def to_memory_format(model: torch.nn.Module, channels_last: bool) -> torch.nn.Module:
    """``model`` with its 4-D parameters and buffers in NHWC (``channels_last``) or NCHW order,
    in place (``nn.Module.to``), so that convolutions take the NHWC kernels on CPU."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    # a documented keyword of Module.to that torch's typed overloads leave out
    return model.to(memory_format=layout)  # type: ignore[call-overload]


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and Python's ``random``."""
    random.seed(seed)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed for one epoch's shuffling and augmentation, a pure function of (seed, epoch).

    Seeding each epoch afresh makes a run resumed at an epoch boundary draw exactly the batches
    and augmentations the uninterrupted run drew.
    """
    return (seed * 1_000_003 + epoch * 7919 + 12345) % (2**63 - 1)


def set_deterministic(enabled: bool) -> None:
    """``torch.use_deterministic_algorithms`` and cuDNN's deterministic mode."""
    # Only on a change: the call imports torch._inductor (about 2 s) the first time.
    if torch.are_deterministic_algorithms_enabled() != enabled:
        torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def choose_threads(requested: int | None) -> int:
    """CPU threads for a run: ``requested``, else all of torch's, or 1 on a crowded machine.

    When other processes keep every core busy (1-minute load average >= cores + 1 as the run
    starts), PyTorch's threads wait for each other on cores they do not get: measured on 2 cores
    with 3 busy processes, an airnet step ran at 310 images/s with 2 threads and 1,092 with 1.
    On a machine with spare cores (load about 2 on 2 cores) 2 threads were faster (about 2,000
    against 1,335), so the fallback is only for crowded machines.
    """
    if requested is not None:
        return requested
    cores = torch.get_num_threads()
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return cores
    return 1 if load >= cores + 1 else cores


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``).

    The one reader of it: run provenance, the deploy benchmark and benchmarks/ all record it.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith(("model name", "Model", "cpu model")) and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
