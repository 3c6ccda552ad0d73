"""Atomic file writes: nothing already written is lost or left half-written.

Each writer writes a temporary file in the destination folder, flushes and fsyncs it, then
renames it over the destination with ``os.replace`` (atomic on POSIX and Windows). A failure at
any point leaves the previous file untouched and removes the temporary one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; on success it replaces ``path``."""
    if "w" not in mode:
        raise ValueError(f"atomic_open writes only, got mode {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_with(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], None]) -> None:
    """Call ``writer(handle)`` on a temporary file, then move it over ``path``."""
    with atomic_open(path, "wb") as handle:
        writer(handle)


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to ``path`` atomically."""
    import torch

    atomic_write_with(path, lambda handle: torch.save(obj, handle))


# matplotlib formats a figure path may name; the suffix decides (a .svg file is SVG).
FIGURE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def figure_format(path: str | os.PathLike[str], flag: str = "--out") -> str:
    """The matplotlib format for ``path``'s suffix; another suffix is a one-line error."""
    from cnnkit.errors import ConfigError

    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_FORMATS:
        raise ConfigError(
            f"{flag} {path}: a figure is written as {', '.join(FIGURE_FORMATS)} "
            f"(the suffix picks the format), got {suffix or 'no suffix'!r}"
        )
    return FIGURE_FORMATS[suffix]


def atomic_save_figure(figure: Any, path: str | os.PathLike[str], **options: Any) -> None:
    """Render a matplotlib ``Figure`` with the Agg canvas (no pyplot, no ``matplotlib.use``)
    in the format its suffix names, and write it atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fmt = figure_format(path)
    FigureCanvasAgg(figure)  # attaches itself to the figure; SVG/PDF pick their own backend
    atomic_write_with(path, lambda handle: figure.savefig(handle, format=fmt, **options))
