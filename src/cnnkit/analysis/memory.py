"""Measured training memory: the bytes autograd saves for backward (capability A4).

Seed 000's estimate (sum over layers of B H W C x bytes, x2 for training) is a rule of thumb;
this measures what a real training-mode forward keeps: every tensor autograd packs for the
backward pass (``torch.autograd.graph.saved_tensors_hooks``), counted once per storage (a ReLU
and the conv after it often save the same tensor), parameters and buffers excluded. The model
is left as found: buffers are cloned (batch-norm statistics do not move), training flags and
the RNG state are restored, and no gradient is computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

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
