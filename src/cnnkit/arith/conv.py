"""Convolution arithmetic: output sizes, padding, parameters and MACs (capabilities A1-A3).

Every size function works per spatial axis. Arguments are an int (same on every axis) or one value
per axis; the number of axes is the length of the longest sequence argument (1 when all are ints).
Results are tuples with one entry per axis. Impossible configurations raise the same way PyTorch
refuses them: :class:`~cnnkit.errors.ConfigError` for an invalid argument, and
:class:`~cnnkit.errors.ShapeError` when an output would be empty.

MACs are multiply-accumulates; FLOPs = 2 x MACs (torch.utils.flop_counter's convention).
"""

from __future__ import annotations

from collections.abc import Sequence

from cnnkit.arith._axes import (
    IntOrSequence,
    as_int,
    as_tuple,
    axis_name,
    is_sequence,
    product,
    require_at_least,
    spatial_ndim,
)
from cnnkit.errors import ConfigError, ShapeError

__all__ = [
    "as_tuple",
    "conv_macs",
    "conv_macs_from_shapes",
    "conv_output_size",
    "conv_params",
    "conv_transpose_macs",
    "conv_transpose_output_size",
    "d2l_output_size",
    "depthwise_params",
    "depthwise_separable_params",
    "effective_kernel_size",
    "padding_pairs",
    "same_padding",
]

# int, "same", "valid", one int per axis, or one (before, after) pair per axis (mixable)
Padding = int | str | Sequence[int | Sequence[int]]
PaddingPairs = tuple[tuple[int, int], ...]


def effective_kernel_size(
    kernel_size: IntOrSequence, dilation: IntOrSequence = 1
) -> tuple[int, ...]:
    """The span of a dilated kernel: k_eff = d(k - 1) + 1 per axis (seed 002, 000 section 1.2).

    >>> effective_kernel_size(3, dilation=2)
    (5,)
    """
    ndim = spatial_ndim(kernel_size, dilation)
    kernel = as_tuple(kernel_size, ndim, "kernel_size")
    dilations = as_tuple(dilation, ndim, "dilation")
    require_at_least(kernel, 1, "kernel_size")
    require_at_least(dilations, 1, "dilation")
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=True))


def padding_pairs(
    padding: Padding,
    kernel_size: IntOrSequence,
    stride: IntOrSequence = 1,
    dilation: IntOrSequence = 1,
) -> PaddingPairs:
    """Padding as one (before, after) pair per axis, as PyTorch's convolution applies it.

    ``"valid"`` is no padding. ``"same"`` pads d(k - 1) in total, ``floor(total/2)`` before and
    the rest after (PyTorch's split: the extra pixel goes after); like PyTorch it is refused for a
    stride above 1 (see :func:`same_padding` for TensorFlow's strided 'same'). Seed 002 "Padding
    Semantics". The number of axes follows the longest sequence argument.
    """
    ndim = spatial_ndim(kernel_size, stride, dilation, padding)
    kernel = as_tuple(kernel_size, ndim, "kernel_size")
    strides = as_tuple(stride, ndim, "stride")
    dilations = as_tuple(dilation, ndim, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * ndim
        if padding != "same":
            raise ConfigError(f"padding must be an int, 'same' or 'valid', got {padding!r}")
        if any(s != 1 for s in strides):
            raise ConfigError(
                f"padding='same' is not supported for strided convolutions (stride={strides}), "
                "as in PyTorch; use same_padding() for TensorFlow's strided 'same'"
            )
        totals = [d * (k - 1) for k, d in zip(kernel, dilations, strict=True)]
        return tuple((total // 2, total - total // 2) for total in totals)
    return _explicit_pairs(padding, ndim)


def _explicit_pairs(padding: int | Sequence[int | Sequence[int]], ndim: int) -> PaddingPairs:
    items = list(padding) if is_sequence(padding) else [padding] * ndim  # type: ignore[arg-type]  # padding entries are validated as pairs on these lines
    if len(items) != ndim:
        raise ConfigError(
            f"padding has {len(items)} entries {tuple(items)}, expected {ndim} (one per axis)"
        )
    pairs = []
    for axis, item in enumerate(items):
        if is_sequence(item):
            if len(item) != 2:  # type: ignore[arg-type]  # padding entries are validated as pairs on these lines
                raise ConfigError(f"padding entry {tuple(item)} is not a (before, after) pair")  # type: ignore[arg-type]  # padding entries are validated as pairs on these lines
            before, after = (as_int(v, "padding") for v in item)  # type: ignore[union-attr]  # padding entries are validated as pairs on these lines
        else:
            before = after = as_int(item, "padding")
        if before < 0 or after < 0:
            raise ConfigError(
                f"padding must be >= 0 on axis {axis_name(axis, ndim)}, got ({before}, {after})"
            )
        pairs.append((before, after))
    return tuple(pairs)


def _sizes(input_size: IntOrSequence, ndim: int) -> tuple[int, ...]:
    sizes = as_tuple(input_size, ndim, "input_size")
    for axis, size in enumerate(sizes):
        if size < 1:
            raise ShapeError(f"input size must be >= 1 on axis {axis_name(axis, ndim)}, got {size}")
    return sizes


def conv_output_size(
    input_size: IntOrSequence,
    kernel_size: IntOrSequence,
    stride: IntOrSequence = 1,
    padding: Padding = 0,
    dilation: IntOrSequence = 1,
) -> tuple[int, ...]:
    """Output size of Conv1d/2d/3d per axis (PyTorch's formula; seeds 002, 000 §2.1, 003 §3).

    n_out = floor((n + p_before + p_after - k_eff) / s) + 1 with k_eff = d(k - 1) + 1;
    symmetric padding p gives seed 002's floor((n + 2p - d(k - 1) - 1) / s) + 1.

    ``padding`` is an int, one int per axis, one (before, after) pair per axis (as ``F.pad``
    followed by an unpadded conv), ``"same"`` or ``"valid"`` (see :func:`padding_pairs`).

    >>> conv_output_size(224, kernel_size=7, stride=2, padding=3)
    (112,)
    >>> conv_output_size((32, 32), kernel_size=3, padding="same", dilation=2)
    (32, 32)
    """
    ndim = spatial_ndim(input_size, kernel_size, stride, dilation, padding)
    kernel = as_tuple(kernel_size, ndim, "kernel_size")
    strides = as_tuple(stride, ndim, "stride")
    dilations = as_tuple(dilation, ndim, "dilation")
    require_at_least(kernel, 1, "kernel_size")
    require_at_least(strides, 1, "stride")
    require_at_least(dilations, 1, "dilation")
    pairs = padding_pairs(padding, kernel, strides, dilations)
    sizes = _sizes(input_size, ndim)
    result = []
    for axis in range(ndim):
        n, (before, after), s = sizes[axis], pairs[axis], strides[axis]
        k_eff = dilations[axis] * (kernel[axis] - 1) + 1
        out = (n + before + after - k_eff) // s + 1
        if out < 1:
            padded = f"2*{before}" if before == after else f"{before} + {after}"
            raise ShapeError(
                f"output size would be {out} on axis {axis_name(axis, ndim)}: "
                f"floor(({n} + {padded} - {k_eff})/{s}) + 1"
                + _dilated_note(kernel[axis], dilations[axis])
            )
        result.append(out)
    return tuple(result)


def _dilated_note(kernel: int, dilation: int) -> str:
    if dilation == 1:
        return ""
    return f" (effective kernel {dilation}*({kernel} - 1) + 1)"


def same_padding(
    input_size: IntOrSequence,
    kernel_size: IntOrSequence,
    stride: IntOrSequence = 1,
    dilation: IntOrSequence = 1,
) -> tuple[tuple[int, int], ...]:
    """(before, after) padding per axis that gives n_out = ceil(n / s) (TensorFlow/timm 'same').

    total = max((ceil(n/s) - 1) s + k_eff - n, 0); before = floor(total/2), after = total - before.
    When the total is odd the extra pixel goes after (bottom/right), as TensorFlow and timm do;
    seed 002: "when d(k-1) is odd, symmetric padding is impossible: pad asymmetrically with F.pad".
    For stride 1 this is PyTorch's ``padding='same'``.

    >>> same_padding(224, kernel_size=3, stride=2)
    ((0, 1),)
    """
    ndim = spatial_ndim(input_size, kernel_size, stride, dilation)
    k_eff = effective_kernel_size(as_tuple(kernel_size, ndim, "kernel_size"), dilation)
    strides = as_tuple(stride, ndim, "stride")
    require_at_least(strides, 1, "stride")
    sizes = _sizes(input_size, ndim)
    pairs = []
    for n, k, s in zip(sizes, k_eff, strides, strict=True):
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        pairs.append((total // 2, total - total // 2))
    return tuple(pairs)


def d2l_output_size(
    input_size: IntOrSequence,
    kernel_size: IntOrSequence,
    total_padding: IntOrSequence = 0,
    stride: IntOrSequence = 1,
) -> tuple[int, ...]:
    """Output size in seed 004's convention, where p is the TOTAL padding of an axis.

    n_out = floor((n - k + p + s) / s)  (d2l §6.3; equal to PyTorch's formula with padding
    p_before + p_after = p). Seed 004: stride 1 gives n - k + p + 1, so p = k - 1 keeps the size.

    >>> d2l_output_size(8, kernel_size=3, total_padding=2, stride=2)
    (4,)
    """
    ndim = spatial_ndim(input_size, kernel_size, total_padding, stride)
    kernel = as_tuple(kernel_size, ndim, "kernel_size")
    totals = as_tuple(total_padding, ndim, "total_padding")
    strides = as_tuple(stride, ndim, "stride")
    require_at_least(kernel, 1, "kernel_size")
    require_at_least(totals, 0, "total_padding")
    require_at_least(strides, 1, "stride")
    sizes = _sizes(input_size, ndim)
    result = []
    for axis in range(ndim):
        n, k, p, s = sizes[axis], kernel[axis], totals[axis], strides[axis]
        out = (n - k + p + s) // s
        if out < 1:
            raise ShapeError(
                f"output size would be {out} on axis {axis_name(axis, ndim)}: "
                f"floor(({n} - {k} + {p} + {s})/{s})"
            )
        result.append(out)
    return tuple(result)


def conv_transpose_output_size(
    input_size: IntOrSequence,
    kernel_size: IntOrSequence,
    stride: IntOrSequence = 1,
    padding: IntOrSequence = 0,
    output_padding: IntOrSequence = 0,
    dilation: IntOrSequence = 1,
) -> tuple[int, ...]:
    """Output size of ConvTranspose1d/2d/3d per axis (seed 002 "Transposed Convolution").

    n_out = (n - 1) s - 2p + d(k - 1) + output_padding + 1. As in PyTorch, output_padding must
    be smaller than the stride or the dilation (it picks one of the input sizes that a strided
    conv maps to the same output size), and padding is a symmetric int per axis.

    >>> conv_transpose_output_size(8, kernel_size=4, stride=2, padding=1)
    (16,)
    """
    ndim = spatial_ndim(input_size, kernel_size, stride, padding, output_padding, dilation)
    kernel = as_tuple(kernel_size, ndim, "kernel_size")
    strides = as_tuple(stride, ndim, "stride")
    if isinstance(padding, str):
        raise ConfigError(f"transposed convolution takes integer padding, got {padding!r}")
    pads = as_tuple(padding, ndim, "padding")
    extra = as_tuple(output_padding, ndim, "output_padding")
    dilations = as_tuple(dilation, ndim, "dilation")
    require_at_least(kernel, 1, "kernel_size")
    require_at_least(strides, 1, "stride")
    require_at_least(dilations, 1, "dilation")
    require_at_least(pads, 0, "padding")
    require_at_least(extra, 0, "output_padding")
    sizes = _sizes(input_size, ndim)
    result = []
    for axis in range(ndim):
        n, k, s, p = sizes[axis], kernel[axis], strides[axis], pads[axis]
        d, op, name = dilations[axis], extra[axis], axis_name(axis, ndim)
        if op >= max(s, d):
            raise ConfigError(
                f"output_padding must be smaller than stride or dilation on axis {name}: "
                f"output_padding={op}, stride={s}, dilation={d}"
            )
        out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
        if out < 1:
            raise ShapeError(
                f"output size would be {out} on axis {name}: "
                f"({n} - 1)*{s} - 2*{p} + {d}*({k} - 1) + {op} + 1"
            )
        result.append(out)
    return tuple(result)


def _check_groups(in_channels: int, out_channels: int, groups: int) -> tuple[int, int, int]:
    in_channels = as_int(in_channels, "in_channels")
    out_channels = as_int(out_channels, "out_channels")
    groups = as_int(groups, "groups")
    require_at_least((in_channels,), 1, "in_channels")
    require_at_least((out_channels,), 1, "out_channels")
    require_at_least((groups,), 1, "groups")
    for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
        if channels % groups:
            raise ConfigError(f"{name}={channels} is not divisible by groups={groups}")
    return in_channels, out_channels, groups


def _kernel_elements(kernel_size: IntOrSequence, ndim: int | None = None) -> int:
    kernel = as_tuple(kernel_size, ndim or spatial_ndim(kernel_size), "kernel_size")
    require_at_least(kernel, 1, "kernel_size")
    return product(kernel)


def conv_params(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrSequence,
    groups: int = 1,
    bias: bool = True,
) -> int:
    """Parameters of a (grouped) convolution, regular or transposed.

    N = C_out (C_in / g) prod(k) + C_out [bias]   (seed 002 "Channels and Parameter Count" and
    "Grouped Convolution"; 000 §2.2 for g = 1). The weight is [C_out, C_in/g, *k] (transposed:
    [C_in, C_out/g, *k], the same count).

    >>> conv_params(3, 64, kernel_size=(7, 7))
    9472
    """
    in_channels, out_channels, groups = _check_groups(in_channels, out_channels, groups)
    weights = out_channels * (in_channels // groups) * _kernel_elements(kernel_size)
    return weights + (out_channels if bias else 0)


def depthwise_params(
    in_channels: int, kernel_size: IntOrSequence, depth_multiplier: int = 1, bias: bool = True
) -> int:
    """Parameters of a depthwise conv with depth multiplier m (groups = C_in, C_out = m C_in).

    N = m C_in prod(k) + m C_in [bias]   (seed 002 "Grouped Convolution", depth multiplier).
    """
    in_channels = as_int(in_channels, "in_channels")
    depth_multiplier = as_int(depth_multiplier, "depth_multiplier")
    require_at_least((depth_multiplier,), 1, "depth_multiplier")
    require_at_least((in_channels,), 1, "in_channels")
    out_channels = in_channels * depth_multiplier
    return conv_params(in_channels, out_channels, kernel_size, groups=in_channels, bias=bias)


def depthwise_separable_params(
    in_channels: int, out_channels: int, kernel_size: IntOrSequence, bias: bool = True
) -> int:
    """Depthwise k x k conv followed by a pointwise 1 x 1 conv (MobileNet; seeds 001, 002).

    N = C_in prod(k) + C_out C_in, plus C_in + C_out biases when ``bias`` (both convs).
    """
    depthwise = depthwise_params(in_channels, kernel_size, bias=bias)
    return depthwise + conv_params(in_channels, out_channels, 1, bias=bias)


def conv_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrSequence,
    output_size: IntOrSequence,
    groups: int = 1,
    batch_size: int = 1,
) -> int:
    """Multiply-accumulates of a convolution (bias adds not counted, as in flop_counter).

    MACs = B prod(out) C_out (C_in / g) prod(k)   (seed 000 §2.2 and problem 3:
    H'W' C_out k^2 C_in).

    >>> conv_macs(64, 128, kernel_size=3, output_size=(56, 56))
    231211008
    """
    in_channels, out_channels, groups = _check_groups(in_channels, out_channels, groups)
    ndim = spatial_ndim(kernel_size, output_size)
    positions = as_tuple(output_size, ndim, "output_size")
    require_at_least(positions, 1, "output_size")
    batch_size = as_int(batch_size, "batch_size")
    require_at_least((batch_size,), 1, "batch_size")
    per_position = out_channels * (in_channels // groups) * _kernel_elements(kernel_size, ndim)
    return batch_size * product(positions) * per_position


def conv_transpose_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrSequence,
    input_size: IntOrSequence,
    groups: int = 1,
    batch_size: int = 1,
) -> int:
    """Multiply-accumulates of a transposed convolution: every INPUT position scatters a kernel.

    MACs = B prod(in) C_in (C_out / g) prod(k)   (torch.utils.flop_counter's transposed rule;
    counting output positions instead overstates it by about s^d, the error of several tools).
    """
    in_channels, out_channels, groups = _check_groups(in_channels, out_channels, groups)
    ndim = spatial_ndim(kernel_size, input_size)
    positions = _sizes(input_size, ndim)
    batch_size = as_int(batch_size, "batch_size")
    require_at_least((batch_size,), 1, "batch_size")
    per_position = in_channels * (out_channels // groups) * _kernel_elements(kernel_size, ndim)
    return batch_size * product(positions) * per_position


def conv_macs_from_shapes(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    out_shape: Sequence[int],
    transposed: bool = False,
) -> int:
    """torch.utils.flop_counter's convolution count divided by 2, from the tensors' shapes.

    MACs = N prod(spatial) w[0] w[1] prod(w[2:]), where spatial is the OUTPUT's spatial shape for
    a regular conv and the INPUT's for a transposed one (w is [C_out, C_in/g, *k] or, transposed,
    [C_in, C_out/g, *k]; either way w[0] w[1] is the channel product of one group times g).
    """
    shapes = {"x_shape": x_shape, "w_shape": w_shape, "out_shape": out_shape}
    values = {}
    for name, shape in shapes.items():
        if not is_sequence(shape) or len(shape) < 3:
            raise ConfigError(f"{name} must be (N, C, *spatial), got {shape!r}")
        values[name] = tuple(as_int(v, name) for v in shape)
        require_at_least(values[name], 0, name)
    x, w, out = values["x_shape"], values["w_shape"], values["out_shape"]
    if not len(x) == len(w) == len(out):
        raise ConfigError(f"x_shape {x}, w_shape {w} and out_shape {out} differ in rank")
    spatial = x[2:] if transposed else out[2:]
    return product(spatial) * product(w[2:]) * x[0] * w[0] * w[1]
