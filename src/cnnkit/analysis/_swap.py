"""Run a model with other tensors in place of its parameters and buffers, and put the very
same objects back afterwards (the capture's meta copies, the memory measurement's cloned
buffers)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn


@contextlib.contextmanager
def swapped(
    model: nn.Module,
    copies: dict[int, torch.Tensor],
    modules: Iterable[nn.Module] | None = None,
) -> Iterator[None]:
    """Put ``copies[id(t)]`` in place of every parameter and buffer ``t`` for the ``with`` body,
    and put back the very same objects afterwards, even when the body raises. ``modules``:
    ``model.modules()``, when the caller has walked them already.

    Each slot (a module's ``_parameters`` or ``_buffers`` entry) is swapped once: ``modules()``
    yields a module registered under two names once (``torch.func.functional_call`` swaps it
    once per name and restored the second swap's meta tensor, corrupting timm's CoaT). The
    dicts are written directly, so no user ``__setattr__`` or parametrization runs.
    """
    slots: list[tuple[dict[str, Any], str, Any]] = []
    try:
        for module in model.modules() if modules is None else modules:
            tables: tuple[dict[str, Any], ...] = (module._parameters, module._buffers)
            for table in tables:
                for key, tensor in table.items():
                    if tensor is not None and id(tensor) in copies:
                        slots.append((table, key, tensor))
                        table[key] = copies[id(tensor)]
        yield
    finally:
        for table, key, tensor in reversed(slots):
            table[key] = tensor
