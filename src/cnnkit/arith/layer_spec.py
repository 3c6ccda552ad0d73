"""A compact text form of a sequential layer stack, for ``cnnkit calc rf --layers``.

Layers are separated by commas. Each layer is an optional kind followed by fields, each a letter
and a value:

- kind: none (a convolution), ``pool`` (stride defaults to the kernel size, as in PyTorch),
  ``tconv`` (a transposed convolution) or ``up`` (nearest upsampling: ``up2``);
- ``k`` kernel size (required), ``s`` stride, ``p`` padding, ``d`` dilation;
- a value is an int, per-axis ints joined by ``x`` (``k1x7``), or for padding ``same``/``valid``.

Examples: ``k3s1p1`` (3x3 conv, stride 1, padding 1), ``poolk2s2``, ``k3d2p2``, ``tconvk4s2p1``,
``up2``. Seed 000 problem 2 is ``k3,k3,poolk2s2,k3``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from cnnkit.errors import ConfigError

__all__ = ["format_layer", "parse_layers"]

_KINDS = {"": "conv", "pool": "pool", "tconv": "transpose", "up": "upsample"}
_FIELDS = {"k": "kernel_size", "s": "stride", "p": "padding", "d": "dilation"}
_KIND = re.compile(r"(pool|tconv|up)?")
_FIELD = re.compile(r"([kspd])(\d+(?:x\d+)*|same|valid)")
_VALUE = re.compile(r"\d+(?:x\d+)*")
_EXAMPLE = "e.g. k3s1p1, poolk2s2, k3d2p2, tconvk4s2p1, up2"


def _number(text: str) -> int | tuple[int, ...]:
    values = tuple(int(v) for v in text.split("x"))
    return values[0] if len(values) == 1 else values


def _parse_one(token: str) -> dict[str, object]:
    kind_match = _KIND.match(token)
    prefix = (kind_match.group(1) or "") if kind_match else ""
    rest = token[len(prefix) :]
    layer: dict[str, object] = {"kind": _KINDS[prefix]}
    if prefix == "up":
        if not _VALUE.fullmatch(rest):
            raise ConfigError(f"layer {token!r}: upsampling takes a factor, e.g. up2")
        layer["scale_factor"] = _number(rest)
        return layer
    position = 0
    while position < len(rest):
        match = _FIELD.match(rest, position)
        if not match:
            raise ConfigError(f"layer {token!r}: cannot read {rest[position:]!r} ({_EXAMPLE})")
        key = _FIELDS[match.group(1)]
        if key in layer:
            raise ConfigError(f"layer {token!r}: {match.group(1)} is given twice")
        value = match.group(2)
        if value in ("same", "valid") and key != "padding":
            raise ConfigError(f"layer {token!r}: only p takes {value!r}")
        layer[key] = value if value in ("same", "valid") else _number(value)
        position = match.end()
    if "kernel_size" not in layer:
        raise ConfigError(f"layer {token!r}: the kernel size k is required ({_EXAMPLE})")
    return layer


def parse_layers(text: str) -> list[dict[str, object]]:
    """Layer dicts for :func:`~cnnkit.arith.receptive_field.receptive_field_table` from text.

    >>> parse_layers("k3s1p1,poolk2s2")
    [{'kind': 'conv', 'kernel_size': 3, 'stride': 1, 'padding': 1}, \
{'kind': 'pool', 'kernel_size': 2, 'stride': 2}]
    """
    tokens = [t.strip() for t in text.replace(" ", "").split(",")]
    if not text.strip() or any(not t for t in tokens):
        raise ConfigError(f"empty layer in {text!r} ({_EXAMPLE})")
    return [_parse_one(token.lower()) for token in tokens]


def _value_text(value: object) -> str:
    if isinstance(value, tuple | list):
        return "x".join(str(v) for v in value)
    return str(value)


def format_layer(layer: Mapping[str, object]) -> str:
    """The compact text of one layer dict (the inverse of :func:`parse_layers`)."""
    kind = layer.get("kind", "conv")
    prefix = {value: key for key, value in _KINDS.items()}.get(str(kind), "")
    if kind == "upsample":
        return prefix + _value_text(layer.get("scale_factor", 2))
    text = prefix
    for letter, key in _FIELDS.items():
        if key in layer:
            text += letter + _value_text(layer[key])
    return text
