"""Meta tensors in the layouts the meta-kernel tests draw (shared by their hypothesis tests)."""

from __future__ import annotations

import torch


def meta_tensor(shape: tuple[int, ...], dtype: torch.dtype, layout: str) -> torch.Tensor:
    """A meta tensor of ``shape``: contiguous, ``channels_last`` (4-d), ``transposed`` (last two
    axes swapped) or ``expanded`` (its last axis a stride-0 broadcast); a layout the shape cannot
    take leaves it contiguous."""
    x = torch.empty(shape, dtype=dtype, device="meta")
    if layout == "channels_last" and len(shape) == 4:
        return x.to(memory_format=torch.channels_last)
    if layout == "transposed" and len(shape) >= 2:
        return x.transpose(-1, -2)
    if layout == "expanded" and len(shape) >= 1:
        return x[..., :1].expand(shape)
    return x
