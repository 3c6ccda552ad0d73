"""Checkpoint files: safe loading, RNG round trip, one-line errors naming the file."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import CheckpointError
from cnnkit.train.checkpoint import (
    load_checkpoint,
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


# -- the whole structure, validated once by load_checkpoint ---------------------------------------


def _mutated(real_run, tmp_path, name: str, change) -> Path:
    saved = torch.load(real_run / name, weights_only=True)
    change(saved)
    path = tmp_path / name
    torch.save(saved, path)
    return path


def _set(key, value):
    return lambda saved: saved.__setitem__(key, value)


def _set_config(key, value):
    return lambda saved: saved["config"].__setitem__(key, value)


STRUCTURE_CASES = [
    ("missing_mean", lambda s: s.pop("mean"), "checkpoint lacks 'mean'"),
    ("missing_classes", lambda s: s.pop("classes"), "checkpoint lacks 'classes'"),
    ("classes_wrong_length", _set("classes", ["a", "b", "c"]), "names 3 classes"),
    ("classes_not_strings", _set("classes", [1, 2, 3, 4]), "field 'classes' must be"),
    ("mean_wrong_length", _set("mean", [0.1, 0.2]), "'mean' has 2 values for 1-channel"),
    ("std_wrong_length", _set("std", []), "'std' has 0 values for 1-channel"),
    ("mean_nan", _set("mean", [float("nan")]), "'mean' must be a list of finite numbers"),
    ("std_zero", _set("std", [0.0]), "field 'std' must be positive"),
    ("config_not_a_dict", _set("config", [1, 2]), "field 'config' must be a dict"),
    ("config_unknown_key", _set_config("colour", 1), "field config: unknown setting 'colour'"),
    ("config_bad_value", _set_config("epochs", "ten"), "--epochs: expected int"),
    ("config_other_model", _set_config("model", "airnet"), "'config' names model 'airnet'"),
    ("image_shape_two_values", _set("image_shape", [12, 12]), "field 'image_shape' must be"),
    ("image_shape_zero", _set("image_shape", [1, 0, 12]), "field 'image_shape' must be"),
    ("epoch_negative", _set("epoch", -1), "field 'epoch' must be an integer >= 0"),
    ("epoch_text", _set("epoch", "1"), "field 'epoch' must be an integer >= 0"),
    ("model_not_a_state_dict", _set("model", [1, 2]), "field 'model' must be a state dict"),
    ("model_name_empty", _set("model_name", ""), "field 'model_name' must be a model name"),
    ("kwargs_not_a_dict", _set("model_kwargs", [1]), "'model_kwargs' must be a dict of plain"),
    ("ema_not_weights", _set("ema", "weights"), "field 'ema' must be a state dict or None"),
    ("format_missing", lambda s: s.pop("format"), "not a cnnkit training checkpoint"),
]


@pytest.mark.parametrize(
    ("change", "message"),
    [case[1:] for case in STRUCTURE_CASES],
    ids=[case[0] for case in STRUCTURE_CASES],
)
def test_a_wrong_structure_is_one_line_naming_the_field(real_run, tmp_path, change, message):
    path = _mutated(real_run, tmp_path, "last.pt", change)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


RESUME_CASES = [
    ("optimizer", _set("optimizer", {"state": 1}), "field 'optimizer' must be"),
    ("progress_unknown", lambda s: s["progress"].update(colour=1), "field 'progress' must be"),
    ("progress_step", lambda s: s["progress"].update(step=-3), "'progress.step' must be"),
    ("progress_epoch", lambda s: s["progress"].update(epoch=7), "'progress.epoch' must be"),
    ("history_rows", _set("history", []), "field 'history' must be one row per completed"),
    ("rng", _set("rng", {"torch": torch.zeros(3)}), "field 'rng' must be the RNG states"),
]


@pytest.mark.parametrize(
    ("change", "message"),
    [case[1:] for case in RESUME_CASES],
    ids=[case[0] for case in RESUME_CASES],
)
def test_a_wrong_training_state_is_one_line_naming_the_field(real_run, tmp_path, change, message):
    path = _mutated(real_run, tmp_path, "last.pt", change)
    load_checkpoint(path)  # the weights alone are fine: evaluate may read it
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path, resumable=True)


def test_resuming_best_pt_says_what_to_pass(real_run):
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(real_run / "best.pt", resumable=True)
    assert "holds weights only, not the training state ('optimizer')" in str(caught.value)
    assert str(caught.value).endswith(f"--resume {real_run}")


def test_cli_refuses_a_wrong_structure_and_best_pt_resume_in_one_line(real_run, tmp_path, capsys):
    from cnnkit.cli.main import main

    broken = _mutated(real_run, tmp_path, "best.pt", lambda s: s.pop("std"))
    before = broken.read_bytes()
    for argv, needle in (
        (["eval", str(broken)], "checkpoint lacks 'std'"),
        (["train", "--resume", str(real_run / "best.pt")], "holds weights only"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("cnnkit: error: ") and err.count("\n") == 1 and needle in err
    assert broken.read_bytes() == before


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello, I am text\n",
        b"PK\x03\x04" + bytes(60),
        pickle.dumps({"format": "cnnkit-checkpoint-1", "x": ValueError("pickled")}),
    ],
    ids=["empty", "text", "broken zip", "legacy pickle with an object"],
)
def test_a_file_that_is_not_a_checkpoint_is_one_line_without_torch_advice(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: not a readable checkpoint (") and "\n" not in text
    assert "weights_only" not in text and "trust" not in text


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=2048))
def test_random_bytes_give_a_checkpoint_error_and_nothing_else(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "random.pt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        load_checkpoint(path, resumable=True)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_truncated_or_flipped_checkpoints_give_a_checkpoint_error(real_run, tmp_path_factory, data):
    original = (real_run / "last.pt").read_bytes()
    cut = data.draw(st.integers(0, len(original) - 1), label="length")
    content = bytearray(original[:cut])
    if content and data.draw(st.booleans(), label="flip a byte too"):
        index = data.draw(st.integers(0, len(content) - 1), label="index")
        content[index] ^= data.draw(st.integers(1, 255), label="mask")
    path = tmp_path_factory.mktemp("cut") / "last.pt"
    path.write_bytes(bytes(content))
    with pytest.raises(CheckpointError):
        load_checkpoint(path, resumable=True)
