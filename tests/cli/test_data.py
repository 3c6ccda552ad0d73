"""`cnnkit data info|fetch|list`: output computed from the files, one-line errors with exit 2."""

from __future__ import annotations

import dataclasses
import gzip
import json

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli.main import main
from cnnkit.data.mnist import MNIST
from cnnkit.data.sources import DATASETS, RemoteFile, user_cache_dir
from tests.data.fakes import Served, gz_files, http_server, md5, tiny_mnist

NAME = "cli_tiny"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNKIT_DATA", raising=False)


@pytest.fixture
def tiny():
    arrays = tiny_mnist(count=10)
    files = gz_files(arrays)
    remote = {name: RemoteFile(name, md5(data)) for name, data in files.items()}
    DATASETS.add(
        NAME,
        dataclasses.replace(
            MNIST,
            name=NAME,
            title="CLI tiny",
            splits={
                "train": (
                    remote["train-images-idx3-ubyte.gz"],
                    remote["train-labels-idx1-ubyte.gz"],
                ),
                "test": (remote["t10k-images-idx3-ubyte.gz"], remote["t10k-labels-idx1-ubyte.gz"]),
            },
            mirrors=("http://127.0.0.1:9/",),
            folders=(NAME,),
            system_folder=None,
        ),
        override=True,
    )
    yield arrays, files
    DATASETS.remove(NAME)


def run(capsys, *argv):
    code = main(["data", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_info_json_reports_files_counts_and_computed_statistics(tmp_path, capsys, tiny):
    arrays, files = tiny
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    code, out, _ = run(capsys, "info", NAME, "--data-dir", str(tmp_path), "--format", "json")
    assert code == 0
    info = json.loads(out)
    assert info["location"] == str(tmp_path)
    assert {f["path"]: f["size_bytes"] for f in info["files"]} == {
        str(tmp_path / n): len(d) for n, d in files.items()
    }
    train = info["splits"][0]
    pixels = arrays["train-images-idx3-ubyte"].astype(np.float64) / 255
    assert train["count"] == 10 and train["image_shape"] == [1, 6, 6]
    assert train["mean"][0] == pytest.approx(pixels.mean(), abs=1e-12)
    assert train["std"][0] == pytest.approx(pixels.std(), abs=1e-12)
    counts = np.bincount(arrays["train-labels-idx1-ubyte"], minlength=10)
    assert train["class_counts"] == counts.tolist()


def test_info_text_of_an_image_folder(tmp_path, capsys):
    for index, name in enumerate(["cat", "dog"]):
        (tmp_path / name).mkdir()
        Image.fromarray(np.full((4, 4), 51 * (index + 1), np.uint8)).save(tmp_path / name / "a.png")
    code, out, _ = run(capsys, "info", f"folder:{tmp_path}")
    assert code == 0
    assert "classes (2): cat, dog" in out
    # pixels 51 and 102 in equal numbers: mean 76.5 / 255 = 0.3000, std 25.5 / 255 = 0.1000
    assert "train   2       1x4x4     0.3000" in out and out.rstrip().endswith("0.1000")


def test_fetch_downloads_from_the_given_mirror(capsys, tiny):
    _, files = tiny
    with http_server(Served(files=files)) as base:
        code, out, err = run(capsys, "fetch", NAME, "--mirror", base)
    assert code == 0
    assert "downloaded 4 file(s)" in out and err.count("downloading ") == 4
    assert sorted(p.name for p in (user_cache_dir() / NAME).iterdir()) == sorted(files)


def test_fetch_failure_is_one_line_with_the_url(capsys, tiny):
    with http_server(Served()) as base:
        code, _, err = run(capsys, "fetch", NAME, "--mirror", base)
    lines = [line for line in err.splitlines() if not line.startswith("downloading ")]
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("cnnkit: error: could not download") and base in lines[0]


def test_wrong_checksum_is_one_line_naming_both_digests(capsys, tiny):
    _, files = tiny
    bad = {n: gzip.compress(gzip.decompress(d), mtime=7) for n, d in files.items()}
    with http_server(Served(files=bad)) as base:
        code, _, err = run(capsys, "fetch", NAME, "--mirror", base)
    lines = [line for line in err.splitlines() if not line.startswith("downloading ")]
    assert code == 2 and len(lines) == 1 and "differs from the published" in lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["info", "fashon_mnist"], "did you mean: fashion_mnist"),
        (["info", "kmnist"], "files not found"),
        (["info", "folder:/no/such/folder"], "/no/such/folder: no such folder"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, argv, expected):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err


def test_list_names_every_dataset(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    for name in ("fashion_mnist", "mnist", "kmnist", "cifar10", "cifar100", "folder:<path>"):
        assert name in out


def test_an_action_is_required(capsys):
    with pytest.raises(SystemExit) as info:
        main(["data"])
    assert info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
