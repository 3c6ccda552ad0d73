"""One tiny trained run on real Fashion-MNIST, shared by the robustness tests of one process."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
needs_fashion = pytest.mark.skipif(
    not FASHION.is_file(), reason="Debian's dataset-fashion-mnist is not installed"
)


def train_tiny_run(out: Path) -> Path:
    """LeNet-5 after one epoch on 1,000 training images (batches of 32), flip TTA on, into
    ``out``: its ``best.pt`` (tests/conftest.py's ``robust_checkpoint`` trains it once per
    test process)."""
    from cnnkit.train import fit, resolve_config

    config = resolve_config(
        "lenet5",
        overrides={
            "train_subset": 1000,
            "val_size": 0,
            "epochs": 1,
            # 31 steps, not the recipe's 3 of 256: a model that has learned something (47% on
            # the test set, not chance), whose predictions are not near-ties that a change of
            # the severity table can flip
            "batch_size": 32,
            "lr": 0.003,
            "tta": True,
            "out_dir": str(out),
            "plots": False,
            "tensorboard": False,
            "progress": False,
        },
    )
    with contextlib.redirect_stdout(io.StringIO()):
        fit(config)
    return out / "best.pt"
