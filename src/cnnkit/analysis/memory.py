"""Memory measured, not estimated: cnnkit's one owner of memory measurement (capability A4).

Two measurements, each an empirical oracle for an estimate elsewhere:

- :func:`measure_saved_bytes`: what a real training-mode forward keeps for backward. Seed
  000's estimate (sum over layers of B H W C x bytes, x2 for training) is a rule of thumb; this
  counts every tensor autograd packs for the backward pass
  (``torch.autograd.graph.saved_tensors_hooks``), once per storage (a ReLU and the conv after it
  often save the same tensor), parameters and buffers excluded. The model is left as found:
  buffers are cloned (batch-norm statistics do not move), training flags and the RNG state are
  restored, and no gradient is computed.
- :func:`peak_allocated_bytes`: the peak of a CPU computation (``cnnkit lab conv-algorithms``
  checks 002's im2col memory bill with it). ``torch.profiler`` with ``profile_memory=True``
  records a ``[memory]`` event for every allocation (positive bytes) and free (negative bytes)
  through PyTorch's CPU allocator; replaying them in time order gives the live bytes after each
  event, whose maximum is the peak, temporaries inside one op included. Buffers that a library
  allocates itself (oneDNN's scratch space in ``torch.nn.functional.conv2d``) are not seen.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from cnnkit.analysis._inputs import ModelInputs, one_shape
from cnnkit.analysis._swap import swapped
from cnnkit.errors import UnsupportedError


@dataclass(frozen=True)
class MeasuredMemory:
    """Bytes autograd saved for backward in a real training-mode forward (unique storages,
    parameters and buffers excluded), beside seed 000's x2 estimate."""

    saved_bytes: int
    saved_tensors: int
    estimate_bytes: int


def _storage(tensor: torch.Tensor) -> tuple[int, int]:
    storage = tensor.untyped_storage()
    return storage._cdata, storage.nbytes()


def measure_saved_bytes(
    model: nn.Module, input_shape: Sequence[int] | ModelInputs, *, estimate: int = 0
) -> MeasuredMemory:
    """Run ``model`` for real in training mode on a seeded random input of ``input_shape``
    (batch included; or summarize's parsed inputs) and sum the bytes of the unique storages
    autograd saves for backward.

    ``estimate`` is carried along for display (seed 000's training estimate).
    """
    tensors = list(model.parameters()) + list(model.buffers())
    device = tensors[0].device if tensors else torch.device("cpu")
    if device.type == "meta":
        raise UnsupportedError(
            "measuring memory runs the model for real, but its weights are on the meta device"
        )
    dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.get_default_dtype())
    # cloned buffers: a training-mode batch norm must not move the real running statistics
    clones = {id(b): b.detach().clone() for b in model.buffers()}
    excluded = {_storage(t)[0] for t in (*tensors, *clones.values())}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        key, nbytes = _storage(tensor)
        if key not in excluded:
            saved.setdefault(key, nbytes)
        return tensor

    flags = [(module, module.training) for module in model.modules()]
    inputs = input_shape if isinstance(input_shape, ModelInputs) else one_shape(input_shape)
    args, kwargs, _ = inputs.make(False, device, dtype)  # seeded: the same values every time
    rng_devices = [] if device.type == "cpu" else [device]
    try:
        for module, _ in flags:
            module.training = True
        with (
            torch.random.fork_rng(devices=rng_devices),
            torch.enable_grad(),
            torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor),
            swapped(model, clones),
        ):
            output = model(*args, **kwargs)
        del output  # frees the autograd graph: nothing is kept, no gradient is computed
    finally:
        for module, training in flags:
            module.training = training
    return MeasuredMemory(
        saved_bytes=sum(saved.values()), saved_tensors=len(saved), estimate_bytes=estimate
    )


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
