"""Checkpoint files: safe loading, RNG round trip, one-line errors naming the file."""

from __future__ import annotations

import random

import pytest
import torch

from cnnkit.errors import CheckpointError
from cnnkit.train.checkpoint import (
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def minimal(model: torch.nn.Module) -> dict:
    return {
        "model": model.state_dict(),
        "model_name": "airnet",
        "model_kwargs": {},
        "config": {},
        "epoch": 1,
        "classes": ["a", "b"],
        "mean": [0.5],
        "std": [0.25],
        "image_shape": [1, 4, 4],
    }


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    save_checkpoint(tmp_path / "c.pt", {**minimal(torch.nn.Linear(2, 2)), "rng": rng_state()})
    expected = (torch.rand(5), random.random())
    torch.manual_seed(99)
    random.seed(99)
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert torch.equal(torch.rand(5), expected[0]) and random.random() == expected[1]


def test_a_folder_means_its_last_checkpoint(tmp_path):
    save_checkpoint(tmp_path / "last.pt", minimal(torch.nn.Linear(2, 2)))
    assert load_checkpoint(tmp_path)["epoch"] == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a torch file", "not a readable checkpoint"),
        (None, "checkpoint not found"),
    ],
)
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value) and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_plain_state_dict_is_not_a_training_checkpoint(tmp_path):
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match="not a cnnkit training checkpoint"):
        load_checkpoint(tmp_path / "w.pt")


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"format": "cnnkit-checkpoint-1", "obj": object()}, tmp_path / "evil.pt")
    with pytest.raises(
        CheckpointError, match=r"pickled Python object \(object\), which cnnkit never loads"
    ):
        load_checkpoint(tmp_path / "evil.pt")


def test_mismatched_weights_name_the_key(tmp_path):
    state = torch.nn.Linear(3, 2).state_dict()
    with pytest.raises(CheckpointError, match=r"weight has shape \(2, 3\).*\(2, 2\)"):
        load_model_state(torch.nn.Linear(2, 2), state, tmp_path / "c.pt")
