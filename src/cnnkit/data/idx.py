"""IDX files (the MNIST family's format), raw or gzip-compressed, validated before use.

Layout (LeCun's MNIST page): two zero bytes, one type byte (0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64), one byte giving the number of dimensions ``d``, then ``d``
big-endian uint32 sizes, then ``prod(sizes)`` items in big-endian order, nothing after them.
Compression is recognised by the gzip magic bytes ``1f 8b``, not by the file name.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from cnnkit.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"

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
    """The bytes of ``path``; an unreadable file is a :class:`DataError` naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def is_gzip(data: bytes) -> bool:
    return data[:2] == GZIP_MAGIC


def decompress(data: bytes, origin: str) -> bytes:
    """``data`` decompressed when it is gzip, else unchanged; a corrupt gzip names ``origin``."""
    if not is_gzip(data):
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:  # EOFError: a truncated gzip stream
        raise DataError(f"{origin}: corrupt or truncated gzip data ({exc})") from None


def parse_idx(data: bytes, origin: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into a native-endian numpy array (see the module docstring for the format).

    Raises:
        DataError: naming ``origin`` when the magic, the header or the item count is wrong.
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
    shape = tuple(int(v) for v in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[data[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header_size
    if found < expected:
        raise DataError(
            f"{origin}: truncated IDX file: header {'x'.join(map(str, shape))} needs "
            f"{expected} data bytes, found {found}"
        )
    if found > expected:
        raise DataError(
            f"{origin}: IDX file has {found - expected} bytes after the "
            f"{'x'.join(map(str, shape))} data its header declares"
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
