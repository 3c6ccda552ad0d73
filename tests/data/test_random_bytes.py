"""Random byte strings, random truncations and byte flips of real IDX and PNG files give a
CnnkitError (or, for an image that still decodes, a dataset) and never another exception.

Real files: Debian's Fashion-MNIST (/usr/share/datasets/fashion-mnist, gzip and decompressed)
and PNGs that matplotlib ships (written by other software than Pillow), plus a 16-bit PNG.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from functools import cache
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cnnkit.data import image_folder
from cnnkit.data.idx import parse_idx, read_idx
from cnnkit.errors import CnnkitError

FASHION = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = ("t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
PNG_FOLDER = Path(matplotlib.get_data_path()) / "images"
PNG_FILES = ("back.png", "filesave_large.png", "matplotlib.png")
# 40 examples by default (the real files make an example cost tens of ms); the "thorough"
# profile (HYPOTHESIS_PROFILE=thorough, tests/conftest.py) runs its own count.
_THOROUGH = os.environ.get("HYPOTHESIS_PROFILE", "default") != "default"
SETTINGS = settings(
    max_examples=settings.default.max_examples if _THOROUGH else 40,
    suppress_health_check=[HealthCheck.too_slow],
)


@cache
def _real_idx() -> list[bytes]:
    """The gzip files as published by Debian and their decompressed IDX content."""
    if not all((FASHION / name).is_file() for name in IDX_FILES):
        return []
    compressed = [(FASHION / name).read_bytes() for name in IDX_FILES]
    return [*compressed, *(gzip.decompress(data) for data in compressed)]


@cache
def _real_png() -> list[bytes]:
    files = [
        (PNG_FOLDER / name).read_bytes() for name in PNG_FILES if (PNG_FOLDER / name).is_file()
    ]
    with tempfile.TemporaryDirectory() as folder:  # and a 16-bit greyscale one
        path = Path(folder) / "grey16.png"
        Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).save(path)
        files.append(path.read_bytes())
    return files


def _mutated(data: bytes, draw) -> bytes:
    """``data`` truncated at a random point, or with a few random bytes flipped."""
    if draw(st.booleans()):
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    mutable = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(mutable) - 1))
        mutable[position] ^= draw(st.integers(1, 255))
    return bytes(mutable)


def _idx_outcome(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "file-idx3-ubyte"
        path.write_bytes(data)
        try:
            read_idx(path)
        except CnnkitError as error:
            assert "\n" not in str(error) and str(path) in str(error)


def _png_outcome(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "only" / "image.png"
        path.parent.mkdir()
        path.write_bytes(data)
        try:
            dataset = image_folder(folder)
        except CnnkitError as error:
            assert "\n" not in str(error) and str(path) in str(error)
        else:
            assert dataset.images.dtype.is_floating_point is False and len(dataset) == 1


@SETTINGS
@given(st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=64).map(lambda b: b"\x1f\x8b" + b),  # claims to be gzip
    st.binary(max_size=64).map(lambda b: b"\x00\x00\x08\x03" + b),  # claims to be IDX
    st.binary(max_size=64).map(lambda b: gzip.compress(b"\x00\x00\x0d\x02" + b)),
))  # fmt: skip
def test_random_bytes_as_an_idx_file_give_a_cnnkit_error(data):
    _idx_outcome(data)
    with contextlib.suppress(CnnkitError):
        parse_idx(data, "bytes")


@pytest.mark.slow
@SETTINGS
@given(st.data())
def test_truncated_or_flipped_real_idx_files_give_a_cnnkit_error(data):
    real = _real_idx()
    if not real:
        pytest.skip("Fashion-MNIST not installed in /usr/share/datasets (tools/install_data.sh)")
    original = data.draw(st.sampled_from(real))
    _idx_outcome(_mutated(original, data.draw))


@SETTINGS
@given(st.one_of(
    st.binary(max_size=128),
    st.binary(max_size=128).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),  # claims to be a PNG
))  # fmt: skip
def test_random_bytes_as_an_image_give_a_cnnkit_error(data):
    _png_outcome(data)


@SETTINGS
@given(st.data())
def test_truncated_or_flipped_real_png_files_give_a_cnnkit_error_or_an_image(data):
    original = data.draw(st.sampled_from(_real_png()))
    _png_outcome(_mutated(original, data.draw))
