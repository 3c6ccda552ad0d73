"""Two tiny training runs on a generated image-folder dataset, shared by the report tests.

One class is named ``<img src=x onerror=alert(1)>``: every page built from these runs must show
that name as text. The first run has a validation split, the second none (and another lr).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

XSS = "<img src=x onerror=alert(1)>"
CLASSES = ("bands", "rings", XSS)
SIZE = 12


def make_folder_dataset(root: Path, train: int = 20, test: int = 10, seed: int = 0) -> Path:
    """``root/{train,test}/<class>/<n>.png``: 12x12 grey noise with a class pattern."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    patterns = [
        (yy % 4 < 2).astype(float),
        (np.hypot(yy - 5.5, xx - 5.5) < 4).astype(float),
        (xx < SIZE // 2).astype(float),
    ]
    for split, count in (("train", train), ("test", test)):
        for name, pattern in zip(CLASSES, patterns, strict=True):
            folder = root / split / name
            folder.mkdir(parents=True)
            for n in range(count):
                pixels = rng.integers(0, 110, (SIZE, SIZE)) + 140 * pattern
                Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{n}.png")
    return root


def train_tiny(out: Path, data: Path, **overrides) -> Path:
    from cnnkit.train import fit, resolve_config

    settings = {
        "model": "airnet",
        "model_kwargs": {"widths": [8, 16, 16]},
        "dataset": f"folder:{data}",
        "epochs": 3,
        "batch_size": 15,
        "lr": 0.05,
        "time_budget": None,
        "val_size": 0,
        "precision": "off",
        "channels_last": False,
        "matmul_weight_grad": False,
        "tta": False,
        "plots": False,
        "tensorboard": False,
        "progress": False,
        "hardest": 4,
        "out_dir": str(out),
        **overrides,
    }
    fit(resolve_config("fast", overrides=settings))
    return out


@pytest.fixture(scope="session")
def folder_data(tmp_path_factory) -> Path:
    return make_folder_dataset(tmp_path_factory.mktemp("report-data") / "shapes")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, folder_data) -> Path:
    """A run with a validation split (15 of the 60 training images)."""
    return train_tiny(tmp_path_factory.mktemp("report-runs") / "with-val", folder_data, val_size=15)


@pytest.fixture(scope="session")
def second_run(tmp_path_factory, folder_data) -> Path:
    """A run without a validation split and with another learning rate."""
    return train_tiny(tmp_path_factory.mktemp("report-runs") / "no-val", folder_data, lr=0.02)


@pytest.fixture(scope="session")
def fine_tuned_run(tmp_path_factory, folder_data, run_dir) -> Path:
    """``run_dir`` fine-tuned from ``layer2`` on (whiten and layer1 frozen, their BatchNorm kept
    in eval mode), the head at its own rate: one epoch."""
    return train_tiny(
        tmp_path_factory.mktemp("report-runs") / "fine-tuned",
        folder_data,
        init_from=str(run_dir),
        unfreeze_from="layer2",
        head_lr=0.1,
        backbone_lr=0.01,
        epochs=1,
    )
