"""Sizes checked before anything is allocated: what fits in this machine's memory and in int64.

A size a user types (a layer shape, an image count in a file header) can ask for more bytes than
the machine has, or more elements than an int64 index can count; torch and numpy then fail with
a multi-line error or the kernel kills the process. These checks turn that into one line.
"""

from __future__ import annotations

import os
from decimal import Decimal

from cnnkit.errors import ConfigError

INT64_MAX = 2**63 - 1


def physical_memory_bytes() -> int | None:
    """Bytes of physical memory (``SC_PHYS_PAGES * SC_PAGE_SIZE``); ``None`` where unknown."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX, or the name is unknown
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def format_bytes(count: int) -> str:
    """``count`` in GB (10^9 bytes) or MB, two significant decimals (``1.50 GB``)."""
    return f"{count / 1e9:,.2f} GB" if count >= 1e9 else f"{count / 1e6:,.2f} MB"


def _scientific(count: int) -> str:
    """``count`` as ``d.ddde+N``; Decimal, since a float cannot hold every Python int."""
    return format(Decimal(count), ".3e")


def check_fits_in_memory(
    needed_bytes: int, what: str, error: type[Exception] = ConfigError
) -> None:
    """Raise ``error`` (one line, naming ``what``) when ``needed_bytes`` exceeds int64 or the
    machine's physical memory; do nothing otherwise. ``needed_bytes`` is a Python int, so the
    check itself cannot overflow."""
    if needed_bytes > INT64_MAX:
        raise error(f"{what}: needs {_scientific(needed_bytes)} bytes, beyond what int64 can count")
    available = physical_memory_bytes()
    if available is not None and needed_bytes > available:
        raise error(
            f"{what}: needs {format_bytes(needed_bytes)}, more than the "
            f"{format_bytes(available)} of memory on this machine"
        )
