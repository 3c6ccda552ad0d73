"""Verified, resumable downloads with the standard library (urllib).

A file is streamed into ``<destination>.part``. When a ``.part`` file already exists the request
asks for the rest with an HTTP ``Range`` header; a server that ignores it (status 200 instead of
206) is answered by starting over. The finished ``.part`` is checked against the published digest:
a match is renamed over the destination (``os.replace``: atomic), a mismatch is deleted (so it is
neither found nor resumed next time) and raises :class:`ChecksumError`. A connection that drops
keeps the ``.part`` for the next attempt and raises :class:`DownloadError` naming the URL. Mirrors
are tried in order until one delivers a verified file.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cnnkit.errors import ChecksumError, DownloadError

CHUNK_BYTES = 1 << 16
USER_AGENT = "cnnkit (https://github.com/cnnkit)"


@dataclass(frozen=True)
class Digest:
    """A published checksum: ``algorithm`` is a :mod:`hashlib` name (``"md5"``, ``"sha256"``).

    ``prefix=True``: ``value`` is only the start of the hex digest, as torch.hub's file names
    carry it (``resnet18-f37072fd.pth``: the SHA-256 starts with ``f37072fd``).
    """

    algorithm: str
    value: str
    prefix: bool = False

    def matches(self, hexdigest: str) -> bool:
        """Whether ``hexdigest`` (lower-case hex) is this digest (or starts with it: prefix)."""
        value = self.value.lower()
        return hexdigest.startswith(value) if self.prefix else hexdigest == value

    def of_file(self, path: str | os.PathLike[str]) -> str:
        return file_hexdigest(path, self.algorithm)


def file_hexdigest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """The :mod:`hashlib` ``algorithm`` digest of the bytes of ``path``, read in 1 MiB chunks
    (hex): the one file hasher of the data folder (downloads, archives, the cache)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Failure(Exception):
    """One mirror failed; the message says why (collected into the final DownloadError)."""


def download_file(
    urls: Sequence[str],
    destination: str | os.PathLike[str],
    digest: Digest,
    *,
    timeout: float = 30.0,
    report: Callable[[str], None] | None = None,
) -> Path:
    """Download the first of ``urls`` that yields a file matching ``digest`` to ``destination``.

    Args:
        urls: the same file on each mirror, tried in order.
        destination: final path; it appears only once its content is verified.
        digest: the published checksum of the file.
        timeout: seconds a connection may stay silent before it counts as cut.
        report: called with one line per attempt (the CLI prints them to stderr).

    Raises:
        ChecksumError: a mirror delivered a complete file with the wrong digest (names the file
            and both digests); the bad file is removed.
        DownloadError: no mirror could deliver the file (names each URL and why); a partial
            download stays in ``<destination>.part`` and the next call resumes it.
    """
    if not urls:
        raise DownloadError(f"{Path(destination).name}: no URL to download it from")
    destination = Path(destination)
    part = destination.with_name(destination.name + ".part")
    try:
        with contextlib.ExitStack() as stack:
            destination.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(_exclusive(part))
            return _download_locked(urls, destination, part, digest, timeout, report)
    except OSError as exc:  # the local side: a read-only folder, a full disk
        raise DownloadError(f"{part}: cannot write ({exc.strerror or exc})") from None


def _download_locked(
    urls: Sequence[str],
    destination: Path,
    part: Path,
    digest: Digest,
    timeout: float,
    report: Callable[[str], None] | None,
) -> Path:
    failures: list[str] = []
    bad_checksum: str | None = None
    for url in urls:
        if report is not None:
            report(f"downloading {url}")
        try:
            _fetch(url, part, timeout)
        except _Failure as exc:
            failures.append(f"{url}: {exc}")
            continue
        got = digest.of_file(part)
        if digest.matches(got):
            os.replace(part, destination)  # _fetch fsynced the part
            return destination
        part.unlink()  # never resume or find a file known to be wrong
        bad_checksum = (
            f"{destination.name} from {url}: {digest.algorithm} {got} "
            f"differs from the published {digest.value}{'...' if digest.prefix else ''}"
        )
        failures.append(f"{url}: wrong {digest.algorithm}")
    if bad_checksum is not None:
        others = [f for f in failures if "wrong " + digest.algorithm not in f]
        raise ChecksumError(bad_checksum + ("; also " + "; ".join(others) if others else ""))
    kept = f" (partial file kept: {part}; run again to resume)" if part.exists() else ""
    raise DownloadError(f"could not download {destination.name}: " + "; ".join(failures) + kept)


@contextlib.contextmanager
def _exclusive(part: Path) -> Iterator[None]:
    """Hold an advisory lock so two processes never append to the same ``.part`` file."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    lock_path = part.with_name(part.name + ".lock")
    with open(lock_path, "wb") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DownloadError(f"{part}: another process is downloading this file") from None
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                lock_path.unlink()


def _fetch(url: str, part: Path, timeout: float) -> None:
    """Bring ``part`` to the full length of ``url``, resuming it when it holds a prefix."""
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # nothing left to send: the checksum decides
            return
        raise _Failure(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise _Failure(f"cannot connect ({reason})") from None
    with response:
        if start and response.status == 206:
            offset = _range_start(response.headers.get("Content-Range", ""))
            if offset != start:
                part.unlink()
                raise _Failure(f"server resumed at byte {offset}, not {start}; restart")
            mode = "ab"
        else:
            start, mode = 0, "wb"  # a 200 answer to a Range request: the server ignored it
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        with open(part, mode) as handle:
            received, broken = _copy(response, handle)
            handle.flush()
            os.fsync(handle.fileno())
    have = start + received
    if broken or (total is not None and have < total):
        of_total = f" of {total}" if total is not None else ""
        raise _Failure(f"connection cut after {have}{of_total} bytes")


def _copy(response: IO[bytes], handle: IO[bytes]) -> tuple[int, bool]:
    """Copy the body: (bytes received, whether the connection broke); what arrived is written.

    Only reading counts as the connection breaking; a failed write raises its OSError.
    """
    received = 0
    while True:
        try:
            chunk = response.read(CHUNK_BYTES)
        except (OSError, http.client.HTTPException):  # reset, timeout, IncompleteRead
            return received, True
        if not chunk:
            return received, False
        handle.write(chunk)
        received += len(chunk)


def _range_start(content_range: str) -> int | None:
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", content_range.strip())
    return int(match.group(1)) if match else None
