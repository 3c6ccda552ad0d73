"""Checks every lab function runs before it allocates anything: seeds torch accepts, and sizes
whose tensors fit in this machine's memory (one-line :class:`ConfigError`, never an allocator
failure or an int64 overflow from inside torch)."""

from __future__ import annotations

from cnnkit.arith.limits import check_fits_in_memory
from cnnkit.errors import ConfigError

FLOAT64_BYTES = 8


def require_seed(value: object, name: str = "seed") -> int:
    """An int that ``torch.Generator.manual_seed`` accepts (-2^63 .. 2^64 - 1)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if not -(2**63) <= value < 2**64:
        raise ConfigError(f"{name} must be in -2^63..2^64-1, got {value}")
    return value


def require_memory(elements: int, what: str, bytes_per_element: int = FLOAT64_BYTES) -> None:
    """ConfigError naming ``what`` when ``elements`` values would not fit in memory or int64."""
    check_fits_in_memory(elements * bytes_per_element, what)
