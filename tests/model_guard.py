"""A guard that proves a call left a user's model exactly as it found it.

Every capability that takes a user's ``nn.Module`` (analysis, explain, deploy, doctor, training
helpers) is tested with it::

    with model_left_as_found(model):
        summarize(model, (3, 32, 32))

The snapshot covers every registration path (a module or tensor registered under two names is
checked under both), and for each parameter and buffer: the object's identity, its type, device,
dtype, shape, ``requires_grad``, the presence of ``.grad`` and a digest of its bytes; for each
module: its identity, type, ``training`` flag and every hook dict torch keeps on it; and the grad
mode. It is checked even when the guarded call raises (the exception still propagates).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)


def _digest(tensor: torch.Tensor) -> str:
    if tensor.device.type == "meta":
        return "meta"
    data = tensor.detach().cpu().contiguous()
    if data.dtype == torch.bfloat16:
        data = data.view(torch.int16)
    return hashlib.sha256(data.numpy().tobytes()).hexdigest()


def _tensor_record(tensor: torch.Tensor | None) -> Any:
    if tensor is None:
        return None
    return (
        id(tensor),
        type(tensor),
        str(tensor.device),
        tensor.dtype,
        tuple(tensor.shape),
        tensor.requires_grad,
        tensor.grad is not None,
        _digest(tensor),
        tuple(getattr(tensor, "_backward_hooks", None) or {}),
    )


def snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything about ``model`` that a read-only call must not change."""
    modules = {}
    for name, module in model.named_modules(remove_duplicate=False):
        hooks = tuple(tuple(getattr(module, attr, {}) or {}) for attr in _HOOK_DICTS)
        modules[name] = (id(module), type(module), module.training, hooks)
    return {
        "modules": modules,
        "parameters": {
            name: _tensor_record(p) for name, p in model.named_parameters(remove_duplicate=False)
        },
        "buffers": {
            name: _tensor_record(b) for name, b in model.named_buffers(remove_duplicate=False)
        },
        "grad_enabled": torch.is_grad_enabled(),
        "global_hooks": (
            len(nn.modules.module._global_forward_hooks),
            len(nn.modules.module._global_forward_pre_hooks),
            len(nn.modules.module._global_backward_hooks),
        ),
    }


def assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Raise AssertionError naming the first part of the model that changed."""
    for part in before:
        if before[part] == after[part]:
            continue
        if isinstance(before[part], dict):
            keys = set(before[part]) | set(after[part])
            changed = sorted(
                k for k in keys if before[part].get(k, "<missing>") != after[part].get(k, "<gone>")
            )
            raise AssertionError(f"model changed: {part} {changed[:5]}")
        raise AssertionError(f"model changed: {part} {before[part]!r} -> {after[part]!r}")


@contextlib.contextmanager
def model_left_as_found(model: nn.Module) -> Iterator[None]:
    """Assert that the ``with`` body leaves ``model`` exactly as found, even when it raises."""
    before = snapshot(model)
    try:
        yield
    finally:
        assert_same(before, snapshot(model))
