"""One error tree for cnnkit.

Every error a user can cause is a :class:`CnnkitError`. The CLI catches it once and prints its
message as one line (exit code 2); library callers can catch the specific subclass. A message
names the cause: the layer, the file, the flag or the name that was wrong.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CnnkitError(Exception):
    """Base class of every error cnnkit raises on purpose."""


class ConfigError(CnnkitError, ValueError):
    """An argument, flag or configuration value is invalid (names the flag and the value)."""


class ShapeError(CnnkitError, ValueError):
    """A shape is impossible: an empty output, a mismatched add, an input too small for a layer."""


class UnknownNameError(CnnkitError, KeyError):
    """A name is not in a registry; the message lists the closest registered names."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        if close:
            hint = "did you mean: " + ", ".join(close) + "?"
        elif known:
            shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            hint = f"known: {shown}"
        else:
            hint = "none are registered"
        self.kind, self.name, self.close_matches = kind, name, close
        super().__init__(f"unknown {kind} {name!r}; {hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DataError(CnnkitError):
    """A data file is missing, truncated, corrupt or of the wrong kind (names the file)."""


class ChecksumError(DataError):
    """A file's checksum differs from the expected one (names the file and both digests)."""


class DownloadError(DataError):
    """A download failed (names the URL and the cause)."""


class CheckpointError(CnnkitError):
    """A checkpoint cannot be loaded or does not match the model (names the first bad key)."""


class UnsupportedError(CnnkitError):
    """An operation or configuration that cnnkit deliberately refuses (says why)."""


class TrainingError(CnnkitError):
    """Training cannot continue: a NaN/Inf loss (names the step), an exhausted budget, ..."""


def suggest(name: str, known: Iterable[str]) -> list[str]:
    """Close matches of ``name`` among ``known`` (difflib ratio >= 0.5), best first."""
    return difflib.get_close_matches(name, sorted(known), n=5, cutoff=0.5)


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (its type's name when it has none): how a one-line
    error quotes PyTorch's reason (the zoo's checks, registry and weights, the analysis capture)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def layer_label(name: str, type_name: str) -> str:
    """How an error names the layer an input fails at: ``features.3 (Conv2d)``, or the type
    alone for the model itself (no name). The zoo's ``locate_failure`` finds the layer by
    replaying a plain ``model(x)`` on meta; the analysis capture, from its own recording."""
    return f"{name} ({type_name})" if name else type_name
