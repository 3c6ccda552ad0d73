"""A cache of decoded datasets, so that a second load skips decompressing and verifying.

Decoding Fashion-MNIST's gzip files and checking their SHA-256 takes about half a second; loading
the decoded uint8 tensors back takes a few tens of milliseconds. Two kinds of file live in
``<user cache>/decoded``:

- ``<dataset>-<split>-<key>.pt``: the decoded tensors, named by the checksum of their source
  payloads (the same data found in two places is stored once);
- ``<key>.json``: a pointer from the source files' *content* (the SHA-256 of each file's bytes)
  and what they were decoded as to a ``.pt`` file, that file's own SHA-256, and how the sources
  were verified.

Entries are keyed by content, never by path, size, modification time or inode: those can all be
restored after a file is changed, and a cache keyed by them would report a corrupted file as
verified. Every load hashes the source files (about 80 ms for Fashion-MNIST's 31 MB of gzip
files on a loaded 2-core machine, see docs/data.md) and the tensors file; the slow part,
decompressing, parsing and checking against the official digests, runs once per distinct
content. The cache is best effort: a read-only or corrupt cache costs speed, never correctness.
Every file is written atomically; tensors are loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
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

CACHE_VERSION = 3  # bump when what a pointer holds changes (3: keyed by content digests)


@dataclass(frozen=True)
class Cached:
    """What a cache hit returns: the tensors, how the sources were verified, the class names."""

    tensors: dict[str, torch.Tensor]
    verified: dict[str, str]
    classes: list[str] | None


def cache_folder() -> Path:
    return user_cache_dir() / "decoded"


def file_sha256(path: Path) -> str:
    """SHA-256 of the bytes of ``path``, read in chunks (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_digests(files: Sequence[Path]) -> list[str] | None:
    """The SHA-256 of each source file, the key of its cache entry; ``None`` when the cache is
    off or a file cannot be read (the reader then reports the file itself)."""
    if disabled():
        return None
    try:
        return [file_sha256(path) for path in files]
    except OSError:
        return None


def _entry_name(digests: Sequence[str], identity: Sequence[str]) -> str:
    """Hash of the files' content digests and of what they were decoded as (``identity``)."""
    text = json.dumps([CACHE_VERSION, list(identity), list(digests)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def lookup(
    digests: Sequence[str] | None, identity: Sequence[str], keys: Sequence[str]
) -> Cached | None:
    """What was decoded from files with content ``digests`` as ``identity``, or ``None``.

    ``identity`` names what the files are decoded as and checked against (dataset, split,
    expected digests): the same archive read as another split, or checked against other
    digests, is a different entry. ``keys`` are the tensors a hit must hold. The tensors file
    must still have the SHA-256 recorded when it was written.
    """
    import torch

    if digests is None or disabled():
        return None
    try:
        pointer = json.loads(
            (cache_folder() / f"{_entry_name(digests, identity)}.json").read_text()
        )
        data = (cache_folder() / pointer["tensors"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != pointer["tensors_sha256"]:
            return None  # the tensors file changed since it was written: decode again
        tensors = torch.load(io.BytesIO(data), weights_only=True)
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
    digests: Sequence[str] | None,
    identity: Sequence[str],
    tensors: dict[str, torch.Tensor],
    *,
    dataset: str,
    split: str,
    content_key: str,
    verified: dict[str, str],
    sources: Sequence[Path] = (),
    classes: list[str] | None = None,
) -> None:
    """Remember ``tensors`` decoded from files of content ``digests`` as ``identity`` (best
    effort: write errors are ignored). The tensors file is named by ``content_key``, a checksum
    of the payloads; ``sources`` are recorded for people reading the pointer."""
    if digests is None or disabled():
        return
    name = f"{dataset}-{split}-{content_key[:24]}.pt"
    with contextlib.suppress(OSError):
        folder = cache_folder()
        atomic_torch_save(tensors, folder / name)
        pointer = {
            "tensors": name,
            "tensors_sha256": file_sha256(folder / name),
            "verified": verified,
            "classes": classes,
            "sources": [str(p) for p in sources],
            "source_sha256": list(digests),
        }
        atomic_write_text(
            folder / f"{_entry_name(digests, identity)}.json", json.dumps(pointer, indent=1)
        )


def disabled() -> bool:
    """``CNNKIT_NO_CACHE=1`` turns the cache off (always decode and verify)."""
    return os.environ.get("CNNKIT_NO_CACHE", "") not in ("", "0")
