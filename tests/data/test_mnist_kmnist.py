"""MNIST and KMNIST, the registered sources themselves, on generated IDX files (no machine here
can download the real ones): found in the user's folders (torchvision's layout too), read,
checked against the published MD5s, fetched from a mirror, trained on, as Fashion-MNIST is."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from cnnkit.cli.main import main
from cnnkit.data import dataset_info, fetch_dataset, load_dataset
from cnnkit.data.mnist import KMNIST, MNIST, STRUCTURE_ONLY
from cnnkit.data.sources import DATASETS
from cnnkit.errors import ChecksumError
from tests.data.fakes import Served, gz_files, http_server, md5, tiny_mnist

SOURCES = {"mnist": (MNIST, "MNIST/raw"), "kmnist": (KMNIST, "KMNIST/raw")}
CLASSES = {"mnist": [str(d) for d in range(10)],
           "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]}  # fmt: skip


def _write_idx(folder, arrays, *, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in gz_files(arrays).items():
        if gz:
            (folder / name).write_bytes(data)
        else:  # torchvision's decompressed copies instead of the .gz
            (folder / name.removesuffix(".gz")).write_bytes(gzip.decompress(data))


@pytest.mark.parametrize("name", SOURCES)
def test_registered_with_the_published_md5s(name):
    source, _ = SOURCES[name]
    assert DATASETS.get(name) is source
    assert [f.name for f in source.remote_files()] == [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
    ]  # fmt: skip
    # torchvision 0.29's datasets/mnist.py lists these digests
    published = {
        "mnist": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "kmnist": "bdb82020997e1d708af4cf47b453dcf7",
    }
    assert source.splits["train"][0].md5 == published[name]
    assert list(source.classes) == CLASSES[name]


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_generated_files_load_in_both_layouts(tmp_path, name, layout):
    arrays = tiny_mnist(count=20, seed=3, size=28)
    folder = tmp_path / (SOURCES[name][1] if layout == "torchvision" else "")
    _write_idx(folder, arrays)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        dataset = load_dataset(name, split, data_dir=tmp_path, download=False)
        np.testing.assert_array_equal(
            dataset.images[:, 0].numpy(), arrays[f"{prefix}-images-idx3-ubyte"]
        )
        np.testing.assert_array_equal(dataset.labels.numpy(), arrays[f"{prefix}-labels-idx1-ubyte"])
        assert dataset.classes == CLASSES[name] and dataset.name == name
    info = dataset_info(name, tmp_path)
    assert info.location == str(folder).rstrip("/")
    assert {file.verified for file in info.files} == {STRUCTURE_ONLY}
    assert [split.count for split in info.splits] == [20, 10]


@pytest.mark.parametrize("name", SOURCES)
def test_gzip_files_are_checked_against_the_published_md5(tmp_path, name):
    arrays = tiny_mnist(count=8, size=28)
    _write_idx(tmp_path, arrays, gz=True)
    published = SOURCES[name][0].splits["train"][0].md5
    with pytest.raises(ChecksumError, match=f"md5 is .* expected the published {published}"):
        load_dataset(name, "train", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("name", SOURCES)
def test_fetch_asks_the_given_mirror_and_refuses_a_file_that_is_not_the_published_one(
    tmp_path, name
):
    files = gz_files(tiny_mnist(count=8, size=28))
    served = Served(files=files)
    with http_server(served) as base, pytest.raises(ChecksumError) as info:
        # the generated file is not MNIST: its MD5 differs; official mirrors come after ours
        fetch_dataset(name, tmp_path, mirrors=[base])
    assert served.requests[0][0] == "/files/train-images-idx3-ubyte.gz"
    assert md5(files["train-images-idx3-ubyte.gz"]) in str(info.value)
    assert not (tmp_path / name / "train-images-idx3-ubyte.gz").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", SOURCES)
def test_train_and_data_info_on_the_command_line(tmp_path, capsys, name):
    _write_idx(tmp_path / "data", tiny_mnist(count=64, seed=1, size=28))
    assert main(["data", "info", name, "--data-dir", str(tmp_path / "data")]) == 0
    assert "1x28x28" in capsys.readouterr().out
    argv = ["train", "--dataset", name, "--data-dir", str(tmp_path / "data"), "--model", "lenet5",
            "--val-size", "0", "--batch-size", "32", "--epochs", "1", "--precision", "off",
            "--device", "cpu", "--no-progress", "--no-tensorboard", "--no-plots", "--no-report",
            "--no-doctor", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 0
    final = json.loads((tmp_path / "run" / "final.json").read_text())
    assert (final["dataset"], final["train_images"], final["test_images"]) == (name, 64, 32)
    assert final["steps"] == 2 and (final["test_top1"] * 32 / 100) == pytest.approx(
        round(final["test_top1"] * 32 / 100)
    )  # a whole number of the 32 test images
