"""Crafted dataset files: IDX headers that overflow or declare nothing, gzip bombs, images that
declare a billion pixels or do not decode, FIFOs and devices in an image folder. Each is refused
in one line naming the file (exit 2 from the CLI) and leaves everything on disk as it was."""

from __future__ import annotations

import gzip
import os
import signal
import struct
import zlib
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

from cnnkit.arith.limits import physical_memory_bytes
from cnnkit.data import idx as idx_module
from cnnkit.data import image_folder, read_idx
from cnnkit.errors import DataError
from tests.data.fakes import idx_bytes, tiny_mnist
from tests.data.hostile import cli_refuses, disk_state


def _header(type_code: int, *sizes: int) -> bytes:
    return struct.pack(f">BBBB{len(sizes)}I", 0, 0, type_code, len(sizes), *sizes)


def _mnist_folder(folder, **replaced: bytes):
    """Raw MNIST-named IDX files (MNIST publishes no digest of uncompressed files, so only their
    structure is checked), with some files replaced by crafted bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in tiny_mnist().items():
        (folder / name).write_bytes(idx_bytes(array))
    for name, data in replaced.items():
        (folder / name.replace("_", "-")).unlink(missing_ok=True)
        target = name.replace("_", "-")
        (folder / target).write_bytes(data)


def _refused_by_data_info(capsys, tmp_path, folder, *fragments) -> str:
    before = disk_state(tmp_path)
    message = cli_refuses(capsys, ["data", "info", "mnist", "--data-dir", str(folder)], *fragments)
    assert disk_state(tmp_path) == before
    return message


def test_idx_header_whose_sizes_overflow_int64_is_refused_in_one_line(tmp_path, capsys):
    crafted = _header(0x08, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF) + bytes(16)
    _mnist_folder(tmp_path / "d", train_images_idx3_ubyte=crafted)
    _refused_by_data_info(
        capsys, tmp_path, tmp_path / "d", "train-images-idx3-ubyte",
        "4294967295x4294967295x4294967295", "beyond what int64 can count",
    )  # fmt: skip


def test_idx_header_beyond_memory_is_refused_before_allocating(tmp_path, capsys, monkeypatch):
    sizes = (60000, 100000, 100000)  # 6e14 bytes: fits int64, not memory
    assert physical_memory_bytes() is None or np.prod(sizes, dtype=object) > physical_memory_bytes()
    monkeypatch.setattr(np, "frombuffer", lambda *a, **k: pytest.fail("allocated"))
    with pytest.raises(DataError, match=r"f: IDX header declares 60000x100000x100000 items: "
                                        r"needs 600,000\.00 GB, more than the"):  # fmt: skip
        idx_module.parse_header(_header(0x08, *sizes), "f")


@pytest.mark.parametrize("sizes", [(0, 6, 6), (12, 0, 6), (12, 6, 0)])
def test_idx_images_header_with_a_zero_size_is_refused_naming_the_file(tmp_path, capsys, sizes):
    crafted = _header(0x08, *sizes)
    _mnist_folder(tmp_path / "d", train_images_idx3_ubyte=crafted)
    _refused_by_data_info(capsys, tmp_path, tmp_path / "d", "train-images-idx3-ubyte",
                          f"declares {'x'.join(map(str, sizes))} images",
                          "at least one image of at least 1x1 pixels")  # fmt: skip


def _gzip_bomb(header: bytes, inflated_bytes: int) -> bytes:
    """A gzip file of ``header`` then ``inflated_bytes`` zeros, compressed 1000:1."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    chunk = bytes(1 << 20)
    parts = [compressor.compress(header)]
    for _ in range(inflated_bytes >> 20):
        parts.append(compressor.compress(chunk))
    return b"".join([*parts, compressor.flush()])


def test_gzip_bomb_dataset_file_is_refused_after_the_size_its_header_declares(
    tmp_path, capsys, monkeypatch
):
    header = _header(0x08, 12, 6, 6)  # declares 432 bytes of pixels
    bomb = _gzip_bomb(header, 64 << 20)  # inflates to 64 MiB
    assert len(bomb) < 100_000
    _mnist_folder(tmp_path / "d")
    (tmp_path / "d" / "train-images-idx3-ubyte").unlink()
    (tmp_path / "d" / "train-images-idx3-ubyte.gz").write_bytes(bomb)
    inflated = []
    original_read = gzip.GzipFile.read

    def counted_read(self, size=-1):
        inflated.append(size)
        return original_read(self, size)

    monkeypatch.setattr(gzip.GzipFile, "read", counted_read)
    _refused_by_data_info(
        capsys, tmp_path, tmp_path / "d", "train-images-idx3-ubyte.gz",
        "inflates beyond the 448 bytes its IDX header (12x6x6) declares",
    )  # fmt: skip
    assert all(0 <= size <= 1 << 20 for size in inflated) and sum(inflated) <= 448 + 1


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` 8-bit grey pixels and holds none."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def _folder(root, per_class=2):
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            Image.fromarray(np.full((4, 4), 10 * index, np.uint8)).save(
                root / name / f"{index}.png"
            )


def _refused_by_folder_info(capsys, tmp_path, root, *fragments) -> str:
    before = disk_state(tmp_path)
    message = cli_refuses(capsys, ["data", "info", f"folder:{root}"], *fragments)
    assert disk_state(tmp_path) == before
    return message


@pytest.mark.parametrize("size", [(30000, 30000), (10000, 10000)])
def test_png_declaring_a_billion_pixels_is_refused_as_a_decompression_bomb(tmp_path, capsys, size):
    _folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "dog" / "huge.png").write_bytes(_png_declaring(*size))
    message = _refused_by_folder_info(capsys, tmp_path, tmp_path / "imgs", "huge.png",
                                      "refused as a possible decompression bomb",
                                      "PIL.Image.MAX_IMAGE_PIXELS")  # fmt: skip
    assert f"{size[0] * size[1]} pixels" in message


def test_image_whose_data_is_truncated_is_refused_naming_the_file(tmp_path, capsys):
    _folder(tmp_path / "imgs")
    path = tmp_path / "imgs" / "cat" / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (4, 4), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:60])  # header intact, pixel data cut
    _refused_by_folder_info(capsys, tmp_path, tmp_path / "imgs", "cut.png", "cannot")


def test_file_that_is_not_an_image_is_refused_naming_the_file(tmp_path, capsys):
    _folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "cat" / "notes.jpg").write_text("not an image")
    _refused_by_folder_info(capsys, tmp_path, tmp_path / "imgs", "notes.jpg",
                            "cannot read image")  # fmt: skip


@contextmanager
def _fails_if_blocked(seconds: int = 20):
    def blocked(signum, frame):
        raise AssertionError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifo_and_device_in_an_image_folder_are_skipped_without_blocking(tmp_path, capsys):
    _folder(tmp_path / "imgs")
    os.mkfifo(tmp_path / "imgs" / "cat" / "pipe.png")
    os.symlink("/dev/zero", tmp_path / "imgs" / "dog" / "zero.png")  # a device, endless bytes
    os.symlink(tmp_path / "nowhere.png", tmp_path / "imgs" / "dog" / "broken.png")
    before = disk_state(tmp_path)
    with _fails_if_blocked():
        dataset = image_folder(tmp_path / "imgs")
        assert len(dataset) == 4 and dataset.labels.tolist() == [0, 0, 1, 1]
        assert main_exit(["data", "info", f"folder:{tmp_path / 'imgs'}"], capsys) == 0
    assert disk_state(tmp_path) == before


def main_exit(argv, capsys) -> int:
    from cnnkit.cli.main import main

    code = main(argv)
    capsys.readouterr()
    return code


def test_fifo_swapped_in_after_listing_is_refused_not_waited_on(tmp_path, monkeypatch):
    from cnnkit.data import folder as folder_module

    _folder(tmp_path / "imgs")
    target = tmp_path / "imgs" / "cat" / "0.png"
    listed = folder_module._images_under

    def swap_after_listing(path):
        found = listed(path)
        if target in found:
            target.unlink()
            os.mkfifo(target)
        return found

    monkeypatch.setattr(folder_module, "_images_under", swap_after_listing)
    with _fails_if_blocked(), pytest.raises(DataError, match=r"0\.png: not a regular file"):
        image_folder(tmp_path / "imgs")


def test_read_idx_names_a_gzip_whose_content_is_not_idx(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"PK\x03\x04 a zip, not IDX" * 100))
    with pytest.raises(DataError, match=r"x\.gz: not an IDX file"):
        read_idx(path)


def test_resize_beyond_memory_is_refused_before_allocating(tmp_path, monkeypatch):
    _folder(tmp_path / "imgs")
    monkeypatch.setattr(np, "empty", lambda *a, **k: pytest.fail("allocated"))
    with pytest.raises(DataError, match=r"imgs: 4 images of 1x10000000x10000000 uint8: needs"):
        image_folder(tmp_path / "imgs", size=10**7)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_read_idx_of_a_fifo_or_device_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe-idx3-ubyte")
    with _fails_if_blocked():
        for path in (tmp_path / "pipe-idx3-ubyte", "/dev/zero"):
            with pytest.raises(DataError, match="not a regular file"):
                read_idx(path)


def test_a_folder_that_cannot_be_listed_is_named(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    _folder(tmp_path / "imgs")

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "iterdir", refuse)  # the tests run as root: chmod would not do
    _refused_by_folder_info(capsys, tmp_path, tmp_path / "imgs",
                            "imgs: cannot list the class folders (Permission denied)")  # fmt: skip
