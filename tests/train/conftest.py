"""A real run folder, trained once per session, for the tests that take its files apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.train.tiny import quadrant_dataset, quiet_config


@pytest.fixture(scope="session")
def real_run(tmp_path_factory) -> Path:
    """One epoch of a tiny zoo model (softmax regression on 12x12 images, 4 classes)."""
    from cnnkit.train import fit

    out = tmp_path_factory.mktemp("real") / "run"
    config = quiet_config(
        out,
        model="softmax_regression",
        model_kwargs={"input_size": 12},
        val_size=0,
        batch_size=32,
        epochs=1,
    )
    fit(config, train_set=quadrant_dataset(96, seed=1), test_set=quadrant_dataset(32, seed=2))
    return out
