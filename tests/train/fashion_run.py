"""One tiny real run on Fashion-MNIST, trained once per test session and shared by the tests of
predict, eval and provenance (LeNet-5, 2,000 training images, one epoch: about 5 s)."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest

ARGV = [
    "train", "--model", "lenet5", "--train-subset", "2000", "--val-size", "1000",
    "--epochs", "1", "--batch-size", "64", "--optimizer", "adamw", "--lr", "0.003", "--tta",
    "--no-plots", "--no-tensorboard", "--no-progress", "--device", "cpu", "--threads", "1",
]  # fmt: skip
_RUNS: dict[Path, tuple[Path, str]] = {}


def fashion_mnist_available() -> bool:
    try:
        from cnnkit.data import load_dataset

        load_dataset("fashion_mnist", "test", download=False)
    except Exception:
        return False
    return True


needs_fashion_mnist = pytest.mark.skipif(
    not fashion_mnist_available(), reason="Fashion-MNIST files not found"
)


def trained_run(base: Path) -> tuple[Path, str]:
    """(run folder, what `cnnkit train` printed) of the shared run under ``base``.

    Trained through ``cnnkit.cli.main.main`` with ``sys.argv`` set as the shell would set it,
    so that environment.json's command line can be checked.
    """
    if base not in _RUNS:
        from cnnkit.cli.main import main

        out = base / "fashion-run"
        argv = [*ARGV, "--out", str(out)]
        printed = io.StringIO()
        saved_argv = sys.argv
        sys.argv = ["cnnkit", *argv]
        try:
            with contextlib.redirect_stdout(printed):
                assert main(argv) == 0
        finally:
            sys.argv = saved_argv
        _RUNS[base] = (out, printed.getvalue())
    return _RUNS[base]
