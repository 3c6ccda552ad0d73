"""The IDX reader against an independent writer (tests/data/fakes.py), and its one-line errors."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cnnkit.data.idx import parse_idx, read_idx
from cnnkit.errors import DataError
from tests.data.fakes import idx_bytes

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@given(
    array=st.sampled_from(DTYPES).flatmap(
        lambda dtype: hnp.arrays(
            dtype, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
            elements={"allow_nan": False} if np.dtype(dtype).kind == "f" else None,
        )
    )
)  # fmt: skip
def test_round_trip_any_dtype_and_shape(array):
    decoded = parse_idx(idx_bytes(array))
    assert decoded.shape == array.shape and decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize("compress", [False, True])
def test_reads_raw_and_gzip_files_alike(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(array)
    path = tmp_path / "images-idx3-ubyte"  # gzip is recognised by content, not by name
    path.write_bytes(gzip.compress(data) if compress else data)
    np.testing.assert_array_equal(read_idx(path), array)


def _error(data: bytes) -> str:
    with pytest.raises(DataError) as info:
        parse_idx(data, "some/file-idx3-ubyte")
    message = str(info.value)
    assert "some/file-idx3-ubyte" in message and "\n" not in message
    return message


def test_truncated_data_names_the_counts():
    data = idx_bytes(np.zeros((3, 4, 4), np.uint8))
    assert "truncated" in _error(data[:-5]) and "48" in _error(data[:-5])


def test_extra_bytes_are_an_error():
    data = idx_bytes(np.zeros((2, 2), np.uint8))
    assert "2 bytes after" in _error(data + b"\x00\x00")


@pytest.mark.parametrize("header", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"PK\x03\x04"])
def test_bad_magic(header):
    assert "not an IDX file" in _error(header + b"\x00\x00\x00\x01\x05")


def test_truncated_header_and_tiny_file():
    assert "truncated IDX header" in _error(b"\x00\x00\x08\x03\x00\x00")
    assert "not an IDX file" in _error(b"\x00\x00")


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "labels.gz"
    labels = np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8)
    compressed = gzip.compress(idx_bytes(labels))
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(DataError, match=r"labels\.gz: corrupt or truncated gzip"):
        read_idx(path)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match="nothing-here"):
        read_idx(tmp_path / "nothing-here")
