"""Normalisation layers: parameters and buffers (capability A2; seeds 001, 002).

BatchNorm keeps running statistics as buffers (state_dict entries that are not parameters):
running_mean and running_var per channel plus one num_batches_tracked counter.
"""

from __future__ import annotations

from cnnkit.arith._axes import IntOrSequence, as_int, as_tuple, product, require_at_least
from cnnkit.arith._axes import spatial_ndim as _length
from cnnkit.errors import ConfigError

__all__ = [
    "batch_norm_buffers",
    "batch_norm_params",
    "group_norm_params",
    "instance_norm_buffers",
    "instance_norm_params",
    "layer_norm_params",
]


def _count(value: int, name: str) -> int:
    value = as_int(value, name)
    require_at_least((value,), 1, name)
    return value


def batch_norm_params(num_features: int, affine: bool = True) -> int:
    """Learnable parameters of BatchNorm1d/2d/3d: gamma and beta per channel, 2C when affine.

    Seed 002 "BatchNorm": y = gamma (x - mu) / sqrt(sigma^2 + eps) + beta, per channel c.
    """
    return 2 * _count(num_features, "num_features") if affine else 0


def batch_norm_buffers(num_features: int, track_running_stats: bool = True) -> int:
    """Buffer elements of BatchNorm: running_mean and running_var (C each) + num_batches_tracked.

    = 2C + 1 when tracking running statistics (their use at eval time is what lets a BN be folded
    into the conv before it, seed 002), else 0.
    """
    return 2 * _count(num_features, "num_features") + 1 if track_running_stats else 0


def instance_norm_params(num_features: int, affine: bool = False) -> int:
    """Parameters of InstanceNorm: 2C when affine (PyTorch's default is affine=False)."""
    return 2 * _count(num_features, "num_features") if affine else 0


def instance_norm_buffers(num_features: int, track_running_stats: bool = False) -> int:
    """Buffers of InstanceNorm: 2C + 1 when tracking running statistics (default off)."""
    return batch_norm_buffers(num_features, track_running_stats)


def layer_norm_params(
    normalized_shape: IntOrSequence, elementwise_affine: bool = True, bias: bool = True
) -> int:
    """Parameters of LayerNorm over ``normalized_shape``: prod(shape) weights + prod(shape) biases.

    N = prod(normalized_shape) x (1 + [bias]) when elementwise_affine, else 0 (seed 001's
    normalisation comparison; the ``bias`` flag is PyTorch's, >= 2.1).
    """
    shape = as_tuple(normalized_shape, _length(normalized_shape), "normalized_shape")
    require_at_least(shape, 1, "normalized_shape")
    if not elementwise_affine:
        return 0
    return product(shape) * (2 if bias else 1)


def group_norm_params(num_channels: int, affine: bool = True, num_groups: int | None = None) -> int:
    """Parameters of GroupNorm: gamma and beta per channel, 2C when affine (no buffers).

    ``num_groups``, when given, must divide ``num_channels`` (PyTorch refuses it otherwise).
    """
    channels = _count(num_channels, "num_channels")
    if num_groups is not None:
        groups = _count(num_groups, "num_groups")
        if channels % groups:
            raise ConfigError(f"num_channels={channels} is not divisible by num_groups={groups}")
    return 2 * channels if affine else 0
