"""environment.json: what reproduces a run, each figure against an independent source."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

import numpy
import pytest
import torch

import cnnkit
from cnnkit.train.provenance import (
    ENVIRONMENT_FILE,
    Environment,
    collect_environment,
    data_files,
    git_state,
    read_environment,
    write_environment,
)
from tests.train.fashion_run import ARGV, needs_fashion_mnist, trained_run
from tests.train.tiny import quadrant_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp())


@needs_fashion_mnist
@pytest.mark.slow
def test_a_run_folder_records_versions_command_machine_and_data_digests(run):
    run_dir, printed = run
    recorded = json.loads((run_dir / ENVIRONMENT_FILE).read_text())
    assert recorded["cnnkit"] == cnnkit.__version__
    assert recorded["torch"] == torch.__version__
    assert recorded["python"] == platform.python_version()
    assert recorded["numpy"] == numpy.__version__
    assert recorded["command"] == ["cnnkit", *ARGV, "--out", str(run_dir)]
    assert recorded["cpu_count"] == os.cpu_count()
    assert recorded["threads"] == 1  # --threads 1
    assert recorded["device"] == "cpu"
    final = json.loads((run_dir / "final.json").read_text())
    assert recorded["precision"] == final["precision"]
    assert final["environment"] == ENVIRONMENT_FILE
    # the data files: the four Fashion-MNIST files read, hashed by sha256sum as the oracle
    files = recorded["data"]
    assert [f["split"] for f in files] == ["train", "train", "test", "test"]
    assert [Path(f["path"]).name.split("-")[0] for f in files] == ["train"] * 2 + ["t10k"] * 2
    sha256sum = shutil.which("sha256sum")
    for entry in files:
        path = Path(entry["path"])
        assert entry["bytes"] == path.stat().st_size
        if sha256sum:
            expected = subprocess.run([sha256sum, path], capture_output=True, text=True).stdout
            assert entry["sha256"] == expected.split()[0]
        else:
            assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # shown, briefly, under the run header
    environment = read_environment(run_dir)
    assert environment is not None and environment.line() in printed.splitlines()[2]


@needs_fashion_mnist
@pytest.mark.slow
def test_the_recorded_commit_is_git_s_when_the_code_is_a_checkout(run):
    recorded = json.loads((run[0] / ENVIRONMENT_FILE).read_text())
    head = subprocess.run(
        ["git", "-C", str(REPO / "src" / "cnnkit"), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
    )
    if head.returncode != 0:  # an installed copy: nothing to record
        assert recorded["git_commit"] is None and recorded["git_dirty"] is None
        return
    assert recorded["git_commit"] == head.stdout.strip()
    status = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout
    assert recorded["git_dirty"] == bool(status.strip())


def test_code_outside_a_checkout_records_no_commit(tmp_path):
    assert git_state(tmp_path) == (None, None)


def test_a_dirty_checkout_says_so(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git not installed")

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "__init__.py").write_text("x = 1\n")
    git("add", "__init__.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    commit = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert git_state(tmp_path) == (commit, False)
    (tmp_path / "__init__.py").write_text("x = 2\n")
    assert git_state(tmp_path) == (commit, True)


def test_an_in_memory_dataset_is_identified_by_the_digest_of_its_tensors():
    train, other = quadrant_dataset(40, seed=1), quadrant_dataset(40, seed=2)
    (entry,) = data_files([train])
    expected = hashlib.sha256(train.images.numpy().tobytes() + train.labels.numpy().tobytes())
    assert entry.sha256 == expected.hexdigest() and entry.path == "<memory: bands>"
    assert data_files([other])[0].sha256 != entry.sha256


def test_an_image_folder_lists_every_file_with_its_digest(tmp_path):
    from PIL import Image

    from cnnkit.data import image_folder

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.new("L", (4, 4), color=len(name) * 40).save(tmp_path / name / "0.png")
    entries = data_files([image_folder(tmp_path)])
    assert [Path(e.path).relative_to(tmp_path).as_posix() for e in entries] == [
        "a/0.png",
        "b/0.png",
    ]
    for entry in entries:
        assert entry.sha256 == hashlib.sha256(Path(entry.path).read_bytes()).hexdigest()


def test_a_resumed_run_keeps_the_earlier_sessions(tmp_path):
    first = collect_environment(device="cpu", precision="fp32", command=["cnnkit", "train"])
    second = collect_environment(device="cpu", precision="bf16", command=["cnnkit", "resume"])
    write_environment(tmp_path, first)
    write_environment(tmp_path, second)
    data = json.loads((tmp_path / ENVIRONMENT_FILE).read_text())
    assert data["command"] == ["cnnkit", "resume"] and data["precision"] == "bf16"
    assert [s["command"] for s in data["previous_sessions"]] == [["cnnkit", "train"]]
    assert read_environment(tmp_path) == second
    assert Environment.from_dict(first.to_dict()) == first


def test_a_missing_or_foreign_environment_file_reads_as_none(tmp_path):
    assert read_environment(tmp_path) is None
    (tmp_path / ENVIRONMENT_FILE).write_text("[1, 2]")
    assert read_environment(tmp_path) is None


def test_the_line_names_versions_and_commit_state():
    environment = collect_environment(device="cpu", precision="fp32", command=["x"])
    line = environment.line()
    assert line.startswith(f"cnnkit {cnnkit.__version__}, torch {torch.__version__}, Python ")
    if environment.git_commit is None:
        assert "not a git checkout" in line
    else:
        assert f"git {environment.git_commit[:10]}" in line
    assert environment.command_line == "x"
