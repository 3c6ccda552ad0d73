"""The refactored trainer reproduces the figures recorded on the code before issue 16, bit for bit.

tests/train/baseline16.json holds, for three runs of /work/baseline16/run.sh made on the original
trainer (a8f3ee9), the test metrics of final.json and a sha256 of every tensor of best.pt's and
last.pt's ``model`` state: lenet5 for 1 epoch, for 2 epochs, and for 2 epochs killed after its
first epoch's checkpoint and resumed (its figures equal the uninterrupted run's). The same
commands run here through the CLI's ``main``; the kill is an exception raised once the first
epoch's files are written. Skipped when Fashion-MNIST is not available locally.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from cnnkit.cli.main import main
from tests.e2e.test_train_cli import fashion_mnist_available
from tests.train.tiny import stop_after_epoch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not fashion_mnist_available(), reason="Fashion-MNIST files not found"),
]

BASELINE = json.loads((Path(__file__).parent / "baseline16.json").read_text())
COMMON = ["--deterministic", "--seed", "0", "--threads", "2", "--no-progress", "--no-plots"]
LENET5 = ["train", "--recipe", "lenet5", "--train-subset", "5000", *COMMON]


class Killed(BaseException):
    """Stands for SIGKILL: nothing in cnnkit catches it."""


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of the dtype's name and the tensor's raw bytes (what the baseline stored)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    raw = flat.view(torch.uint8).numpy().tobytes()
    return hashlib.sha256(f"{flat.dtype}|".encode() + raw).hexdigest()


def figures(folder: Path) -> dict:
    final = json.loads((folder / "final.json").read_text())
    found = {k: final[k] for k in ("test_top1", "test_top5", "test_loss", "per_class_top1")}
    for name in ("best.pt", "last.pt"):
        state = torch.load(folder / name, weights_only=True, map_location="cpu")["model"]
        found[name] = {k: [list(v.shape), tensor_sha256(v)] for k, v in state.items()}
    return found


def test_one_epoch_matches_the_baseline(tmp_path, capsys):
    assert main([*LENET5, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    assert figures(tmp_path / "run") == BASELINE["lenet5"]


def test_a_killed_and_resumed_run_matches_the_baseline(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        stop_after_epoch(patch, 1, Killed)
        with pytest.raises(Killed):
            main([*LENET5, "--epochs", "2", "--out", str(out)])
    assert not (out / "final.json").exists()
    assert main(["train", "--resume", str(out), *COMMON]) == 0
    assert BASELINE["lenet5_killed"] == BASELINE["lenet5_2ep"]
    assert figures(out) == BASELINE["lenet5_killed"]
