"""Finding, downloading and verifying named datasets, on generated IDX files and a local server."""

from __future__ import annotations

import dataclasses
import gzip
import os

import numpy as np
import pytest
import torch

from cnnkit.data import dataset_info, fetch_dataset, load_dataset
from cnnkit.data import mnist as mnist_module
from cnnkit.data.mnist import FASHION_MNIST, STRUCTURE_ONLY, VERIFIED_CONTENT, VERIFIED_GZIP
from cnnkit.data.sources import DATASETS, RemoteFile, user_cache_dir
from cnnkit.errors import ChecksumError, ConfigError, DataError, UnknownNameError
from tests.data.fakes import Served, gz_files, http_server, idx_bytes, md5, sha256, tiny_mnist

NAME = "tiny_idx"


def _register(arrays, *, payload_digests: bool, mirrors=("http://127.0.0.1:9/",)):
    files = gz_files(arrays)
    remote = {
        name: RemoteFile(
            name, md5(data), sha256(gzip.decompress(data)) if payload_digests else None
        )
        for name, data in files.items()
    }
    source = dataclasses.replace(
        FASHION_MNIST,
        name=NAME,
        title="Tiny IDX",
        splits={
            "train": (remote["train-images-idx3-ubyte.gz"], remote["train-labels-idx1-ubyte.gz"]),
            "test": (remote["t10k-images-idx3-ubyte.gz"], remote["t10k-labels-idx1-ubyte.gz"]),
        },
        mirrors=tuple(mirrors),
        folders=(NAME, "TinyIdx/raw"),
        system_folder=None,
    )
    DATASETS.add(NAME, source, override=True)
    return files


@pytest.fixture
def arrays():
    yield tiny_mnist()
    DATASETS.remove(NAME)


def _write(folder, files, *, decompressed=False):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if decompressed:
            (folder / name.removesuffix(".gz")).write_bytes(gzip.decompress(data))
        else:
            (folder / name).write_bytes(data)


def _assert_matches(dataset, arrays, split="train"):
    prefix = "train" if split == "train" else "t10k"
    expected_images = arrays[f"{prefix}-images-idx3-ubyte"]
    assert dataset.images.dtype == torch.uint8 and dataset.images.shape[1] == 1
    np.testing.assert_array_equal(dataset.images[:, 0].numpy(), expected_images)
    np.testing.assert_array_equal(dataset.labels.numpy(), arrays[f"{prefix}-labels-idx1-ubyte"])


def test_not_found_lists_every_folder_searched(tmp_path, monkeypatch, arrays):
    _register(arrays, payload_digests=True)
    monkeypatch.setenv("CNNKIT_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError) as info:
        load_dataset(NAME, "train", data_dir=tmp_path / "mine", download=False)
    message = str(info.value)
    for folder in [tmp_path / "mine", tmp_path / "mine/TinyIdx/raw", tmp_path / "env",
                   user_cache_dir() / NAME]:  # fmt: skip
        assert str(folder) in message
    assert "\n" not in message


def test_downloads_into_the_user_cache_then_finds_it_offline(arrays):
    files = gz_files(arrays)
    served = Served(files=dict(files))
    with http_server(served) as base:
        _register(arrays, payload_digests=True, mirrors=(base,))
        dataset = load_dataset(NAME, "train")
    _assert_matches(dataset, arrays)
    assert sorted(p.name for p in (user_cache_dir() / NAME).iterdir()) == sorted(files)
    assert len(served.requests) == 4  # both splits fetched once
    again = load_dataset(NAME, "test", download=False)  # server gone: found locally
    _assert_matches(again, arrays, "test")


def test_fetch_tries_the_given_mirror_first_and_downloads_into_data_dir(tmp_path, arrays):
    files = _register(arrays, payload_digests=False)
    with http_server(Served(files=files)) as base:
        result = fetch_dataset(NAME, tmp_path / "root", mirrors=[base.rstrip("/")])
    assert sorted(p.name for p in result.downloaded) == sorted(files)
    assert all(p.parent == tmp_path / "root" / NAME for p in result.downloaded)
    assert set(result.verified.values()) == {VERIFIED_GZIP}


def test_search_order_data_dir_then_env_then_cache(tmp_path, monkeypatch):
    # uncompressed copies without a published digest: any content passes, so order shows
    copies = {where: tiny_mnist(seed=i) for i, where in enumerate(["mine", "tv", "env", "cache"])}
    _register(copies["mine"], payload_digests=False)
    try:
        _write(tmp_path / "mine", gz_files(copies["mine"]), decompressed=True)
        _write(tmp_path / "mine2/TinyIdx/raw", gz_files(copies["tv"]), decompressed=True)
        _write(tmp_path / "env" / NAME, gz_files(copies["env"]), decompressed=True)
        _write(user_cache_dir() / NAME, gz_files(copies["cache"]), decompressed=True)
        monkeypatch.setenv("CNNKIT_DATA", str(tmp_path / "env"))
        _assert_matches(
            load_dataset(NAME, data_dir=tmp_path / "mine", download=False), copies["mine"]
        )
        _assert_matches(
            load_dataset(NAME, data_dir=tmp_path / "mine2", download=False), copies["tv"]
        )
        _assert_matches(load_dataset(NAME, download=False), copies["env"])
        monkeypatch.delenv("CNNKIT_DATA")
        _assert_matches(load_dataset(NAME, download=False), copies["cache"])
    finally:
        DATASETS.remove(NAME)


def test_recompressed_copy_passes_by_its_decompressed_content(tmp_path, arrays):
    files = _register(arrays, payload_digests=True)
    recompressed = {
        name: gzip.compress(gzip.decompress(data), compresslevel=1, mtime=123456)
        for name, data in files.items()
    }
    assert all(md5(recompressed[n]) != md5(files[n]) for n in files)  # like Debian's copies
    _write(tmp_path, recompressed)
    source = DATASETS.get(NAME)
    found = source.find_in(tmp_path, "train")
    dataset, verified = source.read(found, "train")
    _assert_matches(dataset, arrays)
    assert set(verified.values()) == {VERIFIED_CONTENT}


def test_wrong_content_names_the_file_and_both_digests(tmp_path, arrays):
    files = _register(arrays, payload_digests=True)
    bad = dict(arrays)
    bad["train-labels-idx1-ubyte"] = (arrays["train-labels-idx1-ubyte"] + 1) % 10
    _write(tmp_path, gz_files(bad))
    expected = DATASETS.get(NAME).splits["train"][1].payload_sha256
    got = sha256(idx_bytes(bad["train-labels-idx1-ubyte"]))
    with pytest.raises(ChecksumError) as info:
        load_dataset(NAME, data_dir=tmp_path, download=False)
    message = str(info.value)
    assert "train-labels-idx1-ubyte.gz" in message and expected in message and got in message
    assert files  # the registered digests were made from the good files


def test_gzip_without_content_digest_is_checked_by_its_md5(tmp_path, arrays):
    files = _register(arrays, payload_digests=False)
    _write(tmp_path, {n: gzip.compress(gzip.decompress(d), mtime=99) for n, d in files.items()})
    with pytest.raises(ChecksumError, match=r"md5 is .* expected the published"):
        load_dataset(NAME, data_dir=tmp_path, download=False)


def test_uncompressed_copy_without_digest_is_structure_checked(tmp_path, arrays):
    files = _register(arrays, payload_digests=False)
    _write(tmp_path, files, decompressed=True)
    source = DATASETS.get(NAME)
    _, verified = source.read(source.find_in(tmp_path, "train"), "train")
    assert set(verified.values()) == {STRUCTURE_ONLY}


def test_image_and_label_counts_must_agree(tmp_path, arrays):
    _register(arrays, payload_digests=False)
    short = dict(arrays)
    short["train-labels-idx1-ubyte"] = arrays["train-labels-idx1-ubyte"][:-1]
    _write(tmp_path, gz_files(short), decompressed=True)
    with pytest.raises(DataError, match=r"holds 12 images but .* holds 11 labels"):
        load_dataset(NAME, data_dir=tmp_path, download=False)


def test_decoded_cache_is_used_and_invalidated_by_a_changed_file(tmp_path, arrays, monkeypatch):
    files = _register(arrays, payload_digests=True)
    _write(tmp_path, files)
    first = load_dataset(NAME, data_dir=tmp_path, download=False)
    calls = []
    original = mnist_module._verified_content
    monkeypatch.setattr(
        mnist_module, "_verified_content", lambda *a: calls.append(a) or original(*a)
    )
    second = load_dataset(NAME, data_dir=tmp_path, download=False)
    assert calls == [] and torch.equal(first.images, second.images)
    corrupt = gz_files({"train-images-idx3-ubyte": arrays["train-images-idx3-ubyte"] // 2})
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(corrupt["train-images-idx3-ubyte.gz"])
    os.utime(tmp_path / "train-images-idx3-ubyte.gz", ns=(1, 1))  # even with an old mtime
    with pytest.raises(ChecksumError):
        load_dataset(NAME, data_dir=tmp_path, download=False)


def test_cache_can_be_turned_off(tmp_path, arrays, monkeypatch):
    _write(tmp_path, _register(arrays, payload_digests=True))
    monkeypatch.setenv("CNNKIT_NO_CACHE", "1")
    load_dataset(NAME, data_dir=tmp_path, download=False)
    assert not (user_cache_dir() / "decoded").exists()


def test_unknown_name_suggests_close_ones():
    with pytest.raises(UnknownNameError, match="did you mean: fashion_mnist"):
        load_dataset("fashion-mnist")


def test_unknown_split_lists_the_splits():
    with pytest.raises(ConfigError, match="choose from train, test"):
        load_dataset("mnist", "validation", download=False)


def test_catalogue_holds_the_published_md5s_and_official_url():
    # zalandoresearch/fashion-mnist README, "Get the Data"
    published = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    assert {f.name: f.md5 for f in FASHION_MNIST.remote_files()} == published
    assert FASHION_MNIST.mirrors == ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    assert set(DATASETS.names()) >= {"fashion_mnist", "mnist", "kmnist", "cifar10", "cifar100"}


def test_info_after_loading_through_another_spelling_of_the_path(tmp_path, arrays, monkeypatch):
    _write(tmp_path / "rel", _register(arrays, payload_digests=True))
    monkeypatch.chdir(tmp_path)
    load_dataset(NAME, data_dir="rel", download=False)  # cached under a relative path
    info = dataset_info(NAME, data_dir=tmp_path / "rel")
    assert {f.verified for f in info.files} == {VERIFIED_CONTENT}
    assert [s.count for s in info.splits] == [12, 6]
