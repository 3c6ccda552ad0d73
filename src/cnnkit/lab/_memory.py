"""Peak memory of a CPU computation, measured by PyTorch's profiler (an empirical oracle).

``torch.profiler`` with ``profile_memory=True`` records a ``[memory]`` event for every
allocation (positive bytes) and free (negative bytes) through PyTorch's CPU allocator. Replaying
them in time order gives the live bytes after each event; the maximum is the peak, including
temporaries that live only inside one op. Buffers that a library allocates itself (oneDNN's
scratch space in ``torch.nn.functional.conv2d``) are not seen.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
from torch.profiler import ProfilerActivity, profile

T = TypeVar("T")


def peak_allocated_bytes(function: Callable[[], T]) -> tuple[T, int]:
    """``(function(), peak)``: the most bytes live at once during the call, counted from 0.

    The result's own storage is part of the peak (it is live at the end).
    """
    with (
        _quiet_stderr(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler,
    ):
        result = function()
    live = peak = 0
    for change in _allocation_changes(profiler):
        live += change
        peak = max(peak, live)
    return result, peak


def _allocation_changes(profiler: profile) -> list[int]:
    """Bytes allocated (+) or freed (-), in time order."""
    raw = getattr(getattr(profiler, "profiler", None), "kineto_results", None)
    if raw is not None:  # every allocation and free, without building the event tree
        events = [e for e in raw.events() if e.name() == "[memory]"]
        events.sort(key=lambda e: e.start_ns())
        return [e.nbytes() for e in events]
    # Fallback (slower, coarser): per-op net allocations and the frees between ops.
    events = sorted(profiler.events(), key=lambda e: e.time_range.start)
    return [e.self_cpu_memory_usage for e in events]


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: the profiler's C++ side logs "profiler_start" and
    "profiler_stop" lines there, which would land in the middle of a command's output."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def tensor_bytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()
