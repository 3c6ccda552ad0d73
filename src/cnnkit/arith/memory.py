"""Memory arithmetic: bytes per element, activation memory, the im2col bill (capability A4).

Sizes are in bytes; GB below means 10^9 bytes (GiB = 2^30 where said).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cnnkit.arith._axes import (
    IntOrSequence,
    as_int,
    as_tuple,
    product,
    require_at_least,
    spatial_ndim,
)
from cnnkit.errors import UnknownNameError

__all__ = [
    "DTYPE_BYTES",
    "activation_bytes",
    "dtype_bytes",
    "im2col_bytes",
    "im2col_elements",
    "training_activation_bytes",
]

# Bytes per element of each torch dtype, by its torch name (torch.<name>.itemsize).
DTYPE_BYTES: dict[str, int] = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "complex128": 16,
    "complex64": 8,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "bool": 1,
}

# Other spellings of the same dtypes (torch's aliases and the usual short names).
_ALIASES: dict[str, str] = {
    "double": "float64",
    "fp64": "float64",
    "float": "float32",
    "fp32": "float32",
    "half": "float16",
    "fp16": "float16",
    "bf16": "bfloat16",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "cdouble": "complex128",
    "cfloat": "complex64",
}


def dtype_bytes(name: str) -> int:
    """Bytes per element of a dtype: ``"float16"``, ``"torch.bfloat16"``, ``"fp16"``, ...

    >>> dtype_bytes("fp16")
    2
    """
    key = str(name).lower().removeprefix("torch.")
    key = _ALIASES.get(key, key)
    if key not in DTYPE_BYTES:
        raise UnknownNameError("dtype", str(name), [*DTYPE_BYTES, *_ALIASES])
    return DTYPE_BYTES[key]


def activation_bytes(shapes: Iterable[Sequence[int]], bytes_per_element: int = 4) -> int:
    """Memory of the given activation tensors: sum over tensors of prod(shape) x bytes.

    Seed 000 §2.2: about sum_l B H_l W_l C_l x 4 bytes in float32 (each shape includes the batch).
    """
    bytes_per_element = as_int(bytes_per_element, "bytes_per_element")
    require_at_least((bytes_per_element,), 1, "bytes_per_element")
    total = 0
    for shape in shapes:
        dims = tuple(as_int(v, "shape") for v in shape)
        require_at_least(dims, 0, "shape")
        total += product(dims)
    return total * bytes_per_element


def training_activation_bytes(
    shapes: Iterable[Sequence[int]], bytes_per_element: int = 4, factor: int = 2
) -> int:
    """Seed 000's rule of thumb for training: activation bytes x 2 (kept for the backward pass).

    A rough estimate, not a measurement: what autograd really keeps depends on each op (ReLU
    keeps its output, BN its input and statistics, an inplace op nothing new); docs/arith.md
    compares it with the bytes autograd saves.
    """
    return activation_bytes(shapes, bytes_per_element) * factor


def im2col_elements(
    batch_size: int,
    in_channels: int,
    kernel_size: IntOrSequence,
    output_size: IntOrSequence,
) -> int:
    """Elements of the explicit im2col (unfold) matrix: B x C_in prod(k) x prod(out).

    Seed 002 "im2col Memory Bill": B C_in K_h K_w H_out W_out; for B = 32, C_in = 64, K = 3 and a
    same-padded 224 x 224 output, 924,844,032 elements.
    """
    batch_size = as_int(batch_size, "batch_size")
    in_channels = as_int(in_channels, "in_channels")
    require_at_least((batch_size,), 1, "batch_size")
    require_at_least((in_channels,), 1, "in_channels")
    ndim = spatial_ndim(kernel_size, output_size)
    kernel = as_tuple(kernel_size, ndim, "kernel_size")
    positions = as_tuple(output_size, ndim, "output_size")
    require_at_least(kernel, 1, "kernel_size")
    require_at_least(positions, 1, "output_size")
    return batch_size * in_channels * product(kernel) * product(positions)


def im2col_bytes(
    batch_size: int,
    in_channels: int,
    kernel_size: IntOrSequence,
    output_size: IntOrSequence,
    bytes_per_element: int = 4,
) -> int:
    """Bytes of the im2col matrix: :func:`im2col_elements` x bytes per element (seed 002).

    >>> im2col_bytes(32, 64, 3, (224, 224), bytes_per_element=2)
    1849688064
    """
    bytes_per_element = as_int(bytes_per_element, "bytes_per_element")
    require_at_least((bytes_per_element,), 1, "bytes_per_element")
    elements = im2col_elements(batch_size, in_channels, kernel_size, output_size)
    return elements * bytes_per_element
