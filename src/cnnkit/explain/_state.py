"""Run a user's model for an explanation and leave it exactly as found.

Explanations run the model in eval mode (batch norm with running statistics, no dropout) so
that each image's map depends on that image only; the ``training`` flags are set per module and
restored afterwards (not ``model.train()``: a user override could do more). Gradients are taken
with :func:`torch.autograd.grad` with respect to the input, so no parameter's ``.grad`` is
touched, and every hook is removed in ``finally``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from cnnkit.errors import ConfigError


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Every module's ``training`` flag off inside, restored on exit (even on error)."""
    flags = [(module, module.training) for module in model.modules()]
    try:
        for module, _ in flags:
            module.training = False
        yield
    finally:
        for module, flag in flags:
            module.training = flag


@contextlib.contextmanager
def removing(handles: list) -> Iterator[list]:
    """Remove every hook handle appended to ``handles`` on exit."""
    try:
        yield handles
    finally:
        for handle in handles:
            handle.remove()


def model_dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    """The dtype and device of the model's first floating parameter or buffer."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype, tensor.device
    return torch.get_default_dtype(), torch.device("cpu")


def as_batch(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``images`` (B, C, H, W) as a fresh tensor of the model's dtype and device."""
    if not isinstance(images, torch.Tensor):
        raise ConfigError(f"images must be a tensor (B, C, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[0] == 0:
        raise ConfigError(f"images must be a batch (B, C, H, W), got shape {tuple(images.shape)}")
    dtype, device = model_dtype_device(model)
    return images.detach().to(device=device, dtype=dtype).clone()


def logits_of(output: object) -> torch.Tensor:
    """The class scores of a model output: a (B, classes) tensor."""
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        output = output[0]  # GoogLeNet-style (logits, aux...) outputs
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ConfigError(f"the model must return class scores (B, classes), got {shape}")
    return output
