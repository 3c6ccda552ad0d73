"""Fully connected layer arithmetic: parameters and MACs (capabilities A2, A3)."""

from __future__ import annotations

from collections.abc import Sequence

from cnnkit.arith._axes import as_int, product, require_at_least
from cnnkit.errors import ConfigError

__all__ = ["linear_macs", "linear_macs_from_shape", "linear_params"]


def _features(in_features: int, out_features: int) -> tuple[int, int]:
    in_features = as_int(in_features, "in_features")
    out_features = as_int(out_features, "out_features")
    require_at_least((in_features,), 1, "in_features")
    require_at_least((out_features,), 1, "out_features")
    return in_features, out_features


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of ``nn.Linear``: N = in x out + out [bias]  (seed 000 §2.2, FC params).

    >>> linear_params(400, 120)
    48120
    """
    in_features, out_features = _features(in_features, out_features)
    return in_features * out_features + (out_features if bias else 0)


def linear_macs(in_features: int, out_features: int, rows: int = 1) -> int:
    """Multiply-accumulates of ``nn.Linear`` applied to ``rows`` vectors: rows x in x out.

    ``rows`` is the product of every input dimension but the last (batch, and tokens or spatial
    positions when the layer is applied per position, as in ConvNeXt); bias adds are not counted
    (torch.utils.flop_counter's addmm/mm rule, divided by 2).
    """
    in_features, out_features = _features(in_features, out_features)
    rows = as_int(rows, "rows")
    require_at_least((rows,), 0, "rows")
    return rows * in_features * out_features


def linear_macs_from_shape(input_shape: Sequence[int], out_features: int) -> int:
    """:func:`linear_macs` for an input of shape (*, in_features): rows = prod(shape[:-1])."""
    shape = tuple(as_int(v, "input_shape") for v in input_shape)
    if not shape:
        raise ConfigError("input_shape must have at least one dimension (in_features)")
    require_at_least(shape, 0, "input_shape")
    return linear_macs(shape[-1], out_features, rows=product(shape[:-1]))
