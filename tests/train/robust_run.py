"""One tiny trained run on real Fashion-MNIST, shared by the robustness tests of one process."""

from __future__ import annotations

import contextlib
import functools
import io
import tempfile
from pathlib import Path

import pytest

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
needs_fashion = pytest.mark.skipif(
    not FASHION.is_file(), reason="Debian's dataset-fashion-mnist is not installed"
)


@functools.cache
def tiny_run() -> Path:
    """LeNet-5 after one epoch on 1,000 training images, flip TTA on: its ``best.pt``."""
    from cnnkit.train import fit, resolve_config

    out = Path(tempfile.mkdtemp(prefix="cnnkit-robustness-")) / "run"
    config = resolve_config(
        "lenet5",
        overrides={
            "train_subset": 1000,
            "val_size": 0,
            "epochs": 1,
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
