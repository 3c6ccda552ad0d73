"""IDX files (the MNIST family's format), raw or gzip-compressed, validated before use.

Layout (LeCun's MNIST page): two zero bytes, one type byte (0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64), one byte giving the number of dimensions ``d``, then ``d``
big-endian uint32 sizes, then ``prod(sizes)`` items in big-endian order, nothing after them.
Compression is recognised by the gzip magic bytes ``1f 8b``, not by the file name.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np

from cnnkit.arith.limits import check_fits_in_memory
from cnnkit.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20

# IDX type byte -> big-endian numpy dtype
IDX_TYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def read_bytes(path: str | Path) -> bytes:
    """The bytes of ``path``; an unreadable file, or one that is not a regular file (a FIFO
    would block, a device such as /dev/zero never ends), is a :class:`DataError` naming it."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise DataError(f"{path}: not a regular file")
            return handle.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def is_gzip(data: bytes) -> bool:
    return data[:2] == GZIP_MAGIC


def parse_header(data: bytes, origin: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, header size) of IDX bytes that hold at least the whole header.

    Raises:
        DataError: naming ``origin`` when the magic or the header is wrong, or when the data the
            header declares could not fit in int64 or in this machine's memory.
    """
    if len(data) < 4:
        raise DataError(f"{origin}: not an IDX file (only {len(data)} bytes)")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise DataError(
            f"{origin}: not an IDX file (magic bytes {data[:4].hex()}, expected 0000 then a "
            f"type byte in {sorted(f'{t:02x}' for t in IDX_TYPES)})"
        )
    ndim = data[3]
    if ndim == 0:
        raise DataError(f"{origin}: IDX header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{origin}: truncated IDX header ({len(data)} of {header_size} bytes)")
    shape = struct.unpack_from(f">{ndim}I", data, 4)
    dtype = np.dtype(IDX_TYPES[data[2]])
    # Python ints: a header of 2^32-1 sized dimensions must not wrap around in int64.
    check_fits_in_memory(
        math.prod(shape) * dtype.itemsize,
        f"{origin}: IDX header declares {_dims(shape)} items",
        DataError,
    )
    return dtype, shape, header_size


def _dims(shape: tuple[int, ...]) -> str:
    if len(shape) > 8:  # a crafted header may declare up to 255 dimensions
        return "x".join(map(str, shape[:8])) + f"x... ({len(shape)} dimensions)"
    return "x".join(map(str, shape))


def decompress(data: bytes, origin: str) -> bytes:
    """``data`` decompressed when it is gzip, else unchanged; a corrupt gzip names ``origin``.

    A gzip stream is decompressed in 1 MiB chunks and never beyond the size its IDX header
    declares plus one byte: a gzip bomb (a small file that inflates to gigabytes) is refused
    after reading what the header promised, without inflating the rest.
    """
    if not is_gzip(data):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            content = bytearray(stream.read(4))
            if len(content) == 4 and content[:2] == b"\0\0":
                content += stream.read(4 * content[3])
            _, shape, header_size = parse_header(bytes(content), origin)
            dtype = np.dtype(IDX_TYPES[content[2]])
            total = header_size + math.prod(shape) * dtype.itemsize
            while len(content) <= total:
                chunk = stream.read(min(_CHUNK, total + 1 - len(content)))
                if not chunk:
                    break
                content += chunk
    except (EOFError, OSError, zlib.error) as exc:  # EOFError: a truncated gzip stream
        raise DataError(f"{origin}: corrupt or truncated gzip data ({exc})") from None
    if len(content) > total:
        raise DataError(
            f"{origin}: gzip data inflates beyond the {total} bytes its IDX header "
            f"({_dims(shape)}) declares; refused without inflating the rest"
        )
    return bytes(content)


def parse_idx(data: bytes, origin: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into a native-endian numpy array (see the module docstring for the format).

    Raises:
        DataError: naming ``origin`` when the magic, the header or the item count is wrong.
    """
    dtype, shape, header_size = parse_header(data, origin)
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header_size
    if found < expected:
        raise DataError(
            f"{origin}: truncated IDX file: header {_dims(shape)} needs "
            f"{expected} data bytes, found {found}"
        )
    if found > expected:
        raise DataError(
            f"{origin}: IDX file has {found - expected} bytes after the "
            f"{_dims(shape)} data its header declares"
        )
    array = np.frombuffer(data, dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a numpy array, validating magic, dimensions and size."""
    return parse_idx(decompress(read_bytes(path), str(path)), str(path))


def check_images_and_labels(
    images: np.ndarray, labels: np.ndarray, images_origin: str, labels_origin: str, num_classes: int
) -> None:
    """Check an (N, H, W) uint8 image array against its (N,) label array; errors name the files."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{images_origin}: expected (N, H, W) uint8 images, got {images.dtype} with shape "
            f"{images.shape}"
        )
    if images.shape[0] == 0 or images.shape[1] == 0 or images.shape[2] == 0:
        raise DataError(
            f"{images_origin}: IDX header declares {_dims(images.shape)} images: "
            "a dataset needs at least one image of at least 1x1 pixels"
        )
    if labels.ndim != 1:
        raise DataError(f"{labels_origin}: expected one label per image, got shape {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_origin} holds {images.shape[0]} images but {labels_origin} holds "
            f"{labels.shape[0]} labels"
        )
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise DataError(
            f"{labels_origin}: labels range {int(labels.min())}..{int(labels.max())}, "
            f"expected 0..{num_classes - 1}"
        )
