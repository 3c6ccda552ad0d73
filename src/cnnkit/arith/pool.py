"""Pooling arithmetic: MaxPool/AvgPool output sizes and adaptive-pool windows (capability A1).

Same per-axis convention as :mod:`cnnkit.arith.conv`: ints or one value per axis in, tuples out.
"""

from __future__ import annotations

from typing import Literal

from cnnkit.arith._axes import IntOrSequence, as_tuple, axis_name, require_at_least, spatial_ndim
from cnnkit.errors import ConfigError, ShapeError

__all__ = ["adaptive_pool_output_size", "adaptive_pool_windows", "pool_output_size"]


def pool_output_size(
    input_size: IntOrSequence,
    kernel_size: IntOrSequence,
    stride: IntOrSequence | None = None,
    padding: IntOrSequence = 0,
    dilation: IntOrSequence = 1,
    ceil_mode: bool = False,
    kind: Literal["max", "avg"] = "max",
) -> tuple[int, ...]:
    """Output size of MaxPool1d/2d/3d and AvgPool1d/2d/3d per axis, exactly as PyTorch computes it.

    floor mode: n_out = floor((n + 2p - k_eff) / s) + 1 with k_eff = d(k - 1) + 1
    ceil mode:  n_out = ceil((n + 2p - k_eff) / s) + 1, minus 1 when the last window would start
                past the input and its left padding, i.e. when (n_out - 1) s >= n + p.
    (Seed 000 §2.1 MaxPool (H - k)/S + 1; seed 004 §4.2 padding and stride; PyTorch's
    ``pooling_output_shape``.) The stride defaults to the kernel size. As in PyTorch, the padding
    may be at most half the kernel size, floor(k / 2). ``kind="avg"`` adds AvgPool's own checks:
    no dilation, and for AvgPool3d an unpadded input at least as large as the kernel.

    >>> pool_output_size(112, kernel_size=3, stride=2)
    (55,)
    >>> pool_output_size(5, kernel_size=2, ceil_mode=True)
    (3,)
    """
    ndim = spatial_ndim(input_size, kernel_size, stride, padding, dilation)
    kernel = as_tuple(kernel_size, ndim, "kernel_size")
    strides = kernel if stride is None else as_tuple(stride, ndim, "stride")
    pads = as_tuple(padding, ndim, "padding")
    dilations = as_tuple(dilation, ndim, "dilation")
    require_at_least(kernel, 1, "kernel_size")
    require_at_least(strides, 1, "stride")
    require_at_least(dilations, 1, "dilation")
    require_at_least(pads, 0, "padding")
    sizes = as_tuple(input_size, ndim, "input_size")
    if kind not in ("max", "avg"):
        raise ConfigError(f"pool kind must be 'max' or 'avg', got {kind!r}")
    if kind == "avg" and any(d != 1 for d in dilations):
        raise ConfigError(f"average pooling has no dilation, got dilation={dilations}")
    result = []
    for axis in range(ndim):
        n, k, s, p, d = sizes[axis], kernel[axis], strides[axis], pads[axis], dilations[axis]
        name = axis_name(axis, ndim)
        if p > k // 2:
            raise ConfigError(
                f"pool padding must be at most half the kernel size on axis {name}: "
                f"padding={p}, kernel_size={k}"
            )
        if n < 1:
            raise ShapeError(f"input size must be >= 1 on axis {name}, got {n}")
        if kind == "avg" and ndim == 3 and n < k:  # PyTorch's avg_pool3d checks this, 1d/2d don't
            raise ShapeError(f"AvgPool3d input {n} is smaller than the kernel {k} on axis {name}")
        k_eff = d * (k - 1) + 1
        span = n + 2 * p - k_eff
        if ceil_mode:
            out = -(-span // s) + 1
            if (out - 1) * s >= n + p:  # the last window would start in the right padding
                out -= 1
            formula = f"ceil(({n} + 2*{p} - {k_eff})/{s}) + 1"
        else:
            out = span // s + 1
            formula = f"floor(({n} + 2*{p} - {k_eff})/{s}) + 1"
        if out < 1:
            raise ShapeError(f"output size would be {out} on axis {name}: {formula}")
        result.append(out)
    return tuple(result)


def adaptive_pool_output_size(
    input_size: IntOrSequence, output_size: IntOrSequence
) -> tuple[int, ...]:
    """Output size of an adaptive pool: the requested size (checked like PyTorch checks it)."""
    windows = adaptive_pool_windows(input_size, output_size)
    return tuple(len(axis) for axis in windows)


def adaptive_pool_windows(
    input_size: IntOrSequence, output_size: IntOrSequence
) -> tuple[tuple[tuple[int, int], ...], ...]:
    """The input window [start, end) of every output index of AdaptiveAvg/MaxPool, per axis.

    start_i = floor(i n / m), end_i = ceil((i + 1) n / m) for output index i of m, input size n.
    Windows overlap when n is not a multiple of m (they vary in size, so an adaptive pool is not
    a fixed-kernel pool). An output size of 0 gives no windows, as PyTorch returns an empty tensor.

    >>> adaptive_pool_windows(5, 3)
    (((0, 2), (1, 4), (3, 5)),)
    """
    ndim = spatial_ndim(input_size, output_size)
    sizes = as_tuple(input_size, ndim, "input_size")
    outputs = as_tuple(output_size, ndim, "output_size")
    require_at_least(outputs, 0, "output_size")
    for axis, n in enumerate(sizes):
        if n < 1:
            raise ShapeError(f"input size must be >= 1 on axis {axis_name(axis, ndim)}, got {n}")
    return tuple(
        tuple(((i * n) // m, -(-((i + 1) * n) // m)) for i in range(m))
        for n, m in zip(sizes, outputs, strict=True)
    )
