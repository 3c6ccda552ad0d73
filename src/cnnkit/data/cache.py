"""A cache of decoded datasets, so that a second load skips decompressing and verifying.

Decoding Fashion-MNIST's gzip files and checking their SHA-256 takes about half a second; loading
the decoded uint8 tensors back takes a few tens of milliseconds. Two kinds of file live in
``<user cache>/decoded``:

- ``<dataset>-<split>-<key>.pt``: the decoded tensors, named by the checksum of their source
  payloads (the same data found in two places is stored once);
- ``<signature>.json``: a pointer from the source files' identity (absolute path, size,
  modification time, inode) to a ``.pt`` file and how its sources were verified. Any change to a
  source file changes the signature, so the file is decoded and verified again.

The cache is best effort: a read-only or corrupt cache costs speed, never correctness. Every file is
written atomically; tensors are loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnnkit._io import atomic_torch_save, atomic_write_text
from cnnkit.data.sources import user_cache_dir

if TYPE_CHECKING:
    import torch

CACHE_VERSION = 2  # bump when what a pointer holds changes


@dataclass(frozen=True)
class Cached:
    """What a cache hit returns: the tensors, how the sources were verified, the class names."""

    tensors: dict[str, torch.Tensor]
    verified: dict[str, str]
    classes: list[str] | None


def cache_folder() -> Path:
    return user_cache_dir() / "decoded"


def _signature(files: Sequence[Path], identity: Sequence[str]) -> str:
    """Hash of the files' identity and of what they were decoded as (``identity``)."""
    parts = []
    for path in files:
        stat = path.stat()
        parts.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino])
    text = json.dumps([CACHE_VERSION, list(identity), parts])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def lookup(files: Sequence[Path], identity: Sequence[str], keys: Sequence[str]) -> Cached | None:
    """What was decoded from ``files`` as ``identity``, or ``None`` on a miss.

    ``identity`` names what the files are decoded as and checked against (dataset, split,
    expected digests): the same archive read as another split, or checked against other
    digests, is a different entry. ``keys`` are the tensors a hit must hold.
    """
    import torch

    if disabled():
        return None
    try:
        pointer = json.loads((cache_folder() / f"{_signature(files, identity)}.json").read_text())
        tensors = torch.load(cache_folder() / pointer["tensors"], weights_only=True)
    except Exception:  # absent, unreadable or corrupt: decode again
        return None
    if not isinstance(tensors, dict) or not all(
        isinstance(tensors.get(key), torch.Tensor) for key in keys
    ):
        return None
    verified, classes = pointer.get("verified"), pointer.get("classes")
    return Cached(
        tensors=tensors,
        verified=verified if isinstance(verified, dict) else {},
        classes=classes if isinstance(classes, list) else None,
    )


def store(
    files: Sequence[Path],
    identity: Sequence[str],
    tensors: dict[str, torch.Tensor],
    *,
    dataset: str,
    split: str,
    content_key: str,
    verified: dict[str, str],
    classes: list[str] | None = None,
) -> None:
    """Remember ``tensors`` decoded from ``files`` as ``identity`` (best effort: write errors
    are ignored). The tensors file is named by ``content_key``, a checksum of the payloads."""
    if disabled():
        return
    name = f"{dataset}-{split}-{content_key[:24]}.pt"
    with contextlib.suppress(OSError):
        folder = cache_folder()
        atomic_torch_save(tensors, folder / name)
        pointer = {
            "tensors": name,
            "verified": verified,
            "classes": classes,
            "sources": [str(p) for p in files],
        }
        signature = _signature(files, identity)
        atomic_write_text(folder / f"{signature}.json", json.dumps(pointer, indent=1))


def disabled() -> bool:
    """``CNNKIT_NO_CACHE=1`` turns the cache off (always decode and verify)."""
    return os.environ.get("CNNKIT_NO_CACHE", "") not in ("", "0")
