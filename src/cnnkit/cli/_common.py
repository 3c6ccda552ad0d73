"""Argument helpers shared by the command modules (parsing only, no logic)."""

from __future__ import annotations

import argparse

from cnnkit.errors import ConfigError


def parse_ints(text: str, flag: str, *, length: int | None = None) -> tuple[int, ...]:
    """Parse ``"3,224,224"`` (or ``"3x224x224"``) into a tuple of positive ints for ``flag``."""
    parts = text.replace(" ", "").replace("x", ",").split(",")
    if any(not p for p in parts):  # "3,,28" or "3,x,28" is a typo, not a 2-D shape
        raise ConfigError(f"{flag}: expected comma-separated integers, got {text!r}")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{flag}: expected comma-separated integers, got {text!r}") from None
    if not values or (length is not None and len(values) != length):
        want = f"{length} integers" if length else "at least one integer"
        raise ConfigError(f"{flag}: expected {want}, got {text!r}")
    if any(v <= 0 for v in values):
        raise ConfigError(f"{flag}: every value must be positive, got {text!r}")
    return values


def add_format(parser: argparse.ArgumentParser, choices: tuple[str, ...], default: str) -> None:
    parser.add_argument(
        "--format", choices=choices, default=default, help=f"output format (default: {default})"
    )


def add_trust_code(parser: argparse.ArgumentParser) -> None:
    """``--trust-code SPEC``: the ``package.module:callable`` a checkpoint's run was built from.

    A checkpoint never selects code to import (only zoo names are built from a file); a run of
    the user's own model is rebuilt only when the user names that code again here.
    """
    parser.add_argument(
        "--trust-code",
        metavar="SPEC",
        help="the package.module:callable to build when a checkpoint's model is one (a "
        "checkpoint never selects code itself; name only code you trust)",
    )
