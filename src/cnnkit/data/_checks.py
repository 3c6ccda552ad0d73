"""Argument checks of the public data functions: a wrong type is a one-line ConfigError naming
the function and the parameter, never a TypeError or AttributeError from deep inside."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

from cnnkit.errors import ConfigError


def _kind(value: object) -> str:
    return type(value).__name__


def require_str(function: str, parameter: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{function}: {parameter} must be a str, got {_kind(value)} {value!r}")
    return value


def require_path(function: str, parameter: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str | os.PathLike):
        allowed = "a str or os.PathLike" + (" or None" if optional else "")
        raise ConfigError(f"{function}: {parameter} must be {allowed}, got {_kind(value)}")


def require_bool(function: str, parameter: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{function}: {parameter} must be True or False, got {value!r}")
    return value


def require_int(function: str, parameter: str, value: object) -> int:
    """An int (a bool is refused: ``True`` is not a count or a seed)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{function}: {parameter} must be an int, got {_kind(value)} {value!r}")
    return value


def require_seed(function: str, parameter: str, value: object) -> int:
    """An int that ``torch.Generator.manual_seed`` accepts (-2^63 .. 2^64 - 1)."""
    seed = require_int(function, parameter, value)
    if not -(2**63) <= seed < 2**64:
        raise ConfigError(f"{function}: {parameter} must be in -2^63..2^64-1, got {value}")
    return seed


def require_dataset(function: str, parameter: str, value: object) -> None:
    from cnnkit.data.dataset import ImageDataset

    if not isinstance(value, ImageDataset):
        raise ConfigError(
            f"{function}: {parameter} must be a cnnkit.data.ImageDataset (from load_dataset), "
            f"got {_kind(value)}"
        )


def finite_numbers(function: str, parameter: str, value: Any) -> tuple[float, ...]:
    """A sequence of finite real numbers (per-channel statistics): a list, tuple, numpy array
    or tensor of numbers; a str, a bool or a non-number item is refused."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigError(
            f"{function}: {parameter} must be a sequence of numbers, got {_kind(value)}"
        )
    numbers = []
    for item in value:
        try:
            if isinstance(item, bool | str | bytes):
                raise TypeError
            number = float(item)
        except (TypeError, ValueError):
            raise ConfigError(f"{function}: {parameter} must hold numbers, got {item!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{function}: {parameter} must be finite, got {item!r}")
        numbers.append(number)
    return tuple(numbers)
