"""Input checks shared by the reference ops: tensors of the right rank and a float dtype.

Sizes and per-axis arguments are validated by :mod:`cnnkit.reference._geometry` (through
``cnnkit.arith``); this module only checks what arith cannot see: tensors.
"""

from __future__ import annotations

import torch

from cnnkit.errors import ConfigError, ShapeError


def require_float(op: str, **tensors: torch.Tensor | None) -> None:
    """ConfigError naming the op and the argument when a tensor is not floating point.

    The tensors that are given must also share one dtype (PyTorch refuses mixed dtypes too).
    """
    dtypes = set()
    for name, tensor in tensors.items():
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise ConfigError(f"{op}: {name} must be a torch.Tensor, got {type(tensor).__name__}")
        if not tensor.is_floating_point():
            raise ConfigError(f"{op}: {name} must be a floating-point tensor, got {tensor.dtype}")
        dtypes.add(tensor.dtype)
    if len(dtypes) > 1:
        found = ", ".join(f"{n}={t.dtype}" for n, t in tensors.items() if t is not None)
        raise ConfigError(f"{op}: tensors must share one dtype, got {found}")


def require_rank(op: str, name: str, tensor: torch.Tensor, rank: int, layout: str) -> None:
    """ShapeError when ``tensor`` does not have ``rank`` dimensions (``layout`` names them)."""
    if tensor.dim() != rank:
        raise ShapeError(f"{op}: {name} must be {rank}-D {layout}, got shape {tuple(tensor.shape)}")


def require_shape(op: str, name: str, tensor: torch.Tensor, shape: tuple[int, ...]) -> None:
    """ShapeError when ``tensor`` does not have exactly ``shape``."""
    if tuple(tensor.shape) != tuple(shape):
        raise ShapeError(f"{op}: {name} has shape {tuple(tensor.shape)}, expected {tuple(shape)}")
