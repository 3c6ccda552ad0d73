"""A cache of decoded datasets, so that a second load skips decompressing and verifying.

Decoding Fashion-MNIST's gzip files and checking their SHA-256 takes about two seconds on a loaded
machine; loading the decoded uint8 tensors back takes a fraction of that. Three kinds of file live
in ``<user cache>/decoded``:

- ``<dataset>-<split>-<key>.pt``: the decoded tensors, named by the checksum of their source
  payloads (the same data found in two places is stored once);
- ``<key>.json``: a pointer from the source files' *content* (the SHA-256 of each file's bytes)
  and what they were decoded as to a ``.pt`` file, that file's own SHA-256, and how the sources
  were verified;
- ``digests/<path hash>.json``: the SHA-256 of a file's bytes with the file's identity when it
  was hashed (device, inode, size, modification and change times, in ns).

Entries are keyed by content, never by path, size, modification time or inode alone: a file can
be changed and its modification time restored, and a cache keyed by them would report the
corrupted file as verified. A file is hashed again whenever its identity differs from the one
recorded, which any write does: every write, truncation or ``utime`` sets the file's change time
(``st_ctime``) to now, and no user call can set it back (POSIX). So each file is hashed once per
change, and a cached load costs a few ``stat`` calls more than before (docs/data.md gives the
figures). Where ``st_ctime`` is a creation time (Windows) files are hashed on every load. The
tensors file is checked the same way against the SHA-256 recorded when it was written.

The cache is best effort: a read-only or corrupt cache costs speed, never correctness. Every
file is written atomically; tensors are loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnnkit._io import atomic_torch_save, atomic_write_text
from cnnkit.data.download import file_hexdigest
from cnnkit.data.sources import user_cache_dir

if TYPE_CHECKING:
    import torch

CACHE_VERSION = 3  # bump when what a pointer holds changes (3: keyed by content digests)
# st_ctime is the inode change time on POSIX; on Windows it is the creation time.
CHANGE_TIME_IS_RELIABLE = os.name == "posix"
RECENT_NS = 2_000_000_000  # files changed less than 2 s ago are hashed on every load


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
    return file_hexdigest(path, "sha256")


def _identity(path: Path) -> list:
    info = os.stat(path)
    return [str(Path(path).resolve()), info.st_dev, info.st_ino, info.st_size,
            info.st_mtime_ns, info.st_ctime_ns]  # fmt: skip


def _record_of(resolved: str) -> Path:
    return cache_folder() / "digests" / f"{hashlib.sha256(resolved.encode()).hexdigest()[:32]}.json"


def known_sha256(path: Path) -> str:
    """SHA-256 of the bytes of ``path``, hashed only when the file changed since the last time
    (its recorded identity differs, see the module docstring)."""
    before = _identity(path)
    record = _record_of(before[0])
    if CHANGE_TIME_IS_RELIABLE:
        with contextlib.suppress(Exception):  # absent or corrupt record: hash
            saved = json.loads(record.read_text())
            if saved["identity"] == before:
                return str(saved["sha256"])
    digest = file_sha256(path)
    # A file written while it was hashed has a new identity: its digest is not recorded. Nor is
    # that of a file changed in the last RECENT_NS: timestamps advance in coarse ticks, so a
    # write in the same tick could leave the identity unchanged (git's "racy" entries).
    recent = time.time_ns() - before[5] < RECENT_NS
    if CHANGE_TIME_IS_RELIABLE and not recent and _identity(path) == before:
        with contextlib.suppress(OSError):
            atomic_write_text(record, json.dumps({"identity": before, "sha256": digest}))
    return digest


def source_digests(files: Sequence[Path]) -> list[str] | None:
    """The SHA-256 of each source file, the key of its cache entry; ``None`` when the cache is
    off or a file cannot be read (the reader then reports the file itself)."""
    if disabled():
        return None
    try:
        return [known_sha256(path) for path in files]
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
        pointer_file = cache_folder() / f"{_entry_name(digests, identity)}.json"
        pointer = json.loads(pointer_file.read_text())
        tensors_file = cache_folder() / pointer["tensors"]
        if known_sha256(tensors_file) != pointer["tensors_sha256"]:
            return None  # the tensors file changed since it was written: decode again
        tensors = torch.load(tensors_file, weights_only=True)
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
    digests: Sequence[str] | None,
    identity: Sequence[str],
    tensors: dict[str, torch.Tensor],
    *,
    dataset: str,
    split: str,
    content_key: str,
    verified: dict[str, str],
    classes: list[str] | None = None,
) -> None:
    """Remember ``tensors`` decoded from ``files``, whose bytes had the SHA-256 ``digests``
    when they were decoded, as ``identity`` (best effort: write errors are ignored). Nothing is
    stored when a file no longer has its digest (it changed while it was decoded). The tensors
    file is named by ``content_key``, a checksum of the payloads."""
    if digests is None or disabled() or source_digests(files) != list(digests):
        return
    name = f"{dataset}-{split}-{content_key[:24]}.pt"
    with contextlib.suppress(OSError):
        folder = cache_folder()
        atomic_torch_save(tensors, folder / name)
        pointer = {
            "tensors": name,
            "tensors_sha256": known_sha256(folder / name),
            "verified": verified,
            "classes": classes,
            "sources": [str(p) for p in files],
            "source_sha256": list(digests),
        }
        atomic_write_text(
            folder / f"{_entry_name(digests, identity)}.json", json.dumps(pointer, indent=1)
        )


def disabled() -> bool:
    """``CNNKIT_NO_CACHE=1`` turns the cache off (always decode and verify)."""
    return os.environ.get("CNNKIT_NO_CACHE", "") not in ("", "0")
