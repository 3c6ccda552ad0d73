"""The decoded-data cache is keyed by content: a file corrupted in place with its size, inode and
modification time restored is decoded and verified again (and refused), never reported as
"sha256 matches the official one"; a corrupted tensors file in the cache is never used."""

from __future__ import annotations

import dataclasses
import gzip
import os
import time

import pytest
import torch

from cnnkit.data import cache as cache_module
from cnnkit.data import dataset_info, load_dataset
from cnnkit.data import mnist as mnist_module
from cnnkit.data.cache import CHANGE_TIME_IS_RELIABLE, cache_folder
from cnnkit.data.mnist import FASHION_MNIST, VERIFIED_CONTENT
from cnnkit.data.sources import DATASETS, RemoteFile
from cnnkit.errors import ChecksumError
from tests.data.fakes import gz_files, md5, sha256, tiny_mnist
from tests.data.hostile import cli_refuses

NAME = "tiny_digest"


@pytest.fixture
def folder(tmp_path):
    """Uncompressed IDX files (torchvision's layout) of a dataset whose content SHA-256s are
    known, as Fashion-MNIST's are."""
    files = gz_files(tiny_mnist())
    remote = {n: RemoteFile(n, md5(d), sha256(gzip.decompress(d))) for n, d in files.items()}
    splits = {
        split: (remote[f"{prefix}-images-idx3-ubyte.gz"], remote[f"{prefix}-labels-idx1-ubyte.gz"])
        for split, prefix in (("train", "train"), ("test", "t10k"))
    }
    source = dataclasses.replace(
        FASHION_MNIST, name=NAME, folders=(), system_folder=None, splits=splits
    )
    DATASETS.add(NAME, source, override=True)
    root = tmp_path / "data"
    root.mkdir()
    for name, data in files.items():
        (root / name.removesuffix(".gz")).write_bytes(gzip.decompress(data))
    yield root
    DATASETS.remove(NAME)


def _corrupt_in_place_keeping_size_inode_and_mtime(path):
    info = path.stat()
    with open(path, "r+b") as handle:  # same inode, same size
        handle.seek(info.st_size - 1)
        last = handle.read(1)
        handle.seek(info.st_size - 1)
        handle.write(bytes([last[0] ^ 0xFF]))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_ino, after.st_mtime_ns) == (
        info.st_size, info.st_ino, info.st_mtime_ns,
    )  # fmt: skip


def test_corrupted_file_with_its_mtime_restored_is_verified_again_and_refused(folder, capsys):
    info = dataset_info(NAME, data_dir=folder)  # decodes, verifies and caches every split
    assert {f.verified for f in info.files} == {VERIFIED_CONTENT}
    _corrupt_in_place_keeping_size_inode_and_mtime(folder / "train-images-idx3-ubyte")
    with pytest.raises(ChecksumError, match="sha256 of the decompressed content is"):
        load_dataset(NAME, data_dir=folder, download=False)
    cli_refuses(capsys, ["data", "info", NAME, "--data-dir", str(folder)],
                "train-images-idx3-ubyte: sha256 of the decompressed content is",
                "expected the official")  # fmt: skip


def test_a_cache_hit_checks_content_but_skips_decoding_and_verifying(folder, monkeypatch):
    first = load_dataset(NAME, data_dir=folder, download=False)
    calls = []
    original = mnist_module._verified_content
    monkeypatch.setattr(mnist_module, "_verified_content",
                        lambda *a: calls.append(a) or original(*a))  # fmt: skip
    second = load_dataset(NAME, data_dir=folder, download=False)
    assert calls == [] and torch.equal(first.images, second.images)


def test_same_content_elsewhere_shares_the_entry_and_a_touched_file_still_hits(
    folder, tmp_path, monkeypatch
):
    load_dataset(NAME, data_dir=folder, download=False)
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in folder.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    os.utime(copy / "train-images-idx3-ubyte", ns=(1, 1))
    calls = []
    monkeypatch.setattr(mnist_module, "_verified_content", lambda *a: calls.append(a))
    load_dataset(NAME, data_dir=copy, download=False)
    assert calls == []  # keyed by content: no decode for the same bytes


def test_a_corrupted_tensors_file_in_the_cache_is_never_used(folder, monkeypatch):
    expected = load_dataset(NAME, data_dir=folder, download=False)
    (tensors_file,) = [p for p in cache_folder().iterdir() if "-train-" in p.name]
    loaded = torch.load(tensors_file, weights_only=True)
    loaded["images"] = loaded["images"] // 2  # still a valid checkpoint, wrong pixels
    torch.save(loaded, tensors_file)
    got = load_dataset(NAME, data_dir=folder, download=False)
    assert torch.equal(got.images, expected.images)


posix_only = pytest.mark.skipif(not CHANGE_TIME_IS_RELIABLE, reason="st_ctime is no change time")


@posix_only
def test_an_unchanged_file_is_hashed_once_then_recognised_by_its_identity(folder, monkeypatch):
    monkeypatch.setattr(cache_module, "RECENT_NS", 0)  # the files here were written just now
    load_dataset(NAME, data_dir=folder, download=False)  # hashes and records every file
    hashed = []
    original = cache_module.file_sha256
    monkeypatch.setattr(cache_module, "file_sha256", lambda p: hashed.append(p) or original(p))
    load_dataset(NAME, data_dir=folder, download=False)
    assert hashed == []


@posix_only
def test_a_write_after_the_digest_was_recorded_is_seen_through_the_change_time(folder, monkeypatch):
    monkeypatch.setattr(cache_module, "RECENT_NS", 0)
    dataset_info(NAME, data_dir=folder)
    time.sleep(0.05)  # past the file system's timestamp tick
    _corrupt_in_place_keeping_size_inode_and_mtime(folder / "t10k-labels-idx1-ubyte")
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte: sha256"):
        load_dataset(NAME, "test", data_dir=folder, download=False)


def test_a_recently_changed_file_is_hashed_on_every_load(folder, monkeypatch):
    load_dataset(NAME, data_dir=folder, download=False)
    hashed = []
    original = cache_module.file_sha256
    monkeypatch.setattr(cache_module, "file_sha256", lambda p: hashed.append(p) or original(p))
    load_dataset(NAME, data_dir=folder, download=False)
    assert {p.name for p in hashed} >= {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"}
