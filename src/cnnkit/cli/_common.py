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
