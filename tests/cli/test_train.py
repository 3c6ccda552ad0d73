"""`cnnkit train` and `cnnkit eval`: generated flags, precedence, one-line errors, eval output."""

from __future__ import annotations

import argparse
import json

import pytest

from cnnkit.cli.main import build_parser, main
from cnnkit.train import TrainConfig, fit
from cnnkit.train.config import SECTIONS, flatten_settings, setting_fields
from tests.train.tiny import quadrant_dataset


def train_parser():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    return subparsers.choices["train"]


def test_every_config_field_has_exactly_one_flag():
    destinations = [a.dest for a in train_parser()._actions if a.help != argparse.SUPPRESS]
    for item in setting_fields():
        flags = 1 if item.metadata.get("flag", True) else 0  # budget_changes is a record
        assert destinations.count(item.name) == flags, item.name
    flags = {s for a in train_parser()._actions for s in a.option_strings}
    for required in (
        "--model",
        "--dataset",
        "--recipe",
        "--epochs",
        "--batch-size",
        "--lr",
        "--seed",
        "--deterministic",
        "--time-budget",
        "--out",
        "--resume",
    ):
        assert required in flags, required


def dry_run(capsys, *argv: str) -> dict:
    assert main(["train", "--dry-run", *argv]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {*SECTIONS, "budget_changes"}  # the nested config.json
    return flatten_settings(printed)


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["--recipe", "lenet5"], 0),
        (["--recipe", "lenet5", "--tta"], 1),
        (["--recipe", "lenet5", "--tta", "3"], 3),
        (["--recipe", "best"], 2),
        (["--recipe", "best", "--no-tta"], 0),
        (["--recipe", "best", "--tta-shift", "0"], 1),  # the older flag still works
        (["--recipe", "fast", "--tta", "--tta-shift", "2"], 3),
    ],
)
def test_tta_is_one_level_flag(capsys, argv, level):
    assert dry_run(capsys, *argv)["tta"] == level


def test_a_nested_config_file_is_read_like_a_flat_one(tmp_path, capsys):
    nested, flat = tmp_path / "nested.json", tmp_path / "flat.json"
    nested.write_text(json.dumps({"schedule": {"epochs": 7}, "optimisation": {"batch_size": 64}}))
    flat.write_text(json.dumps({"epochs": 7, "batch_size": 64}))
    first = dry_run(capsys, "--recipe", "seed003", "--config", str(nested))
    assert first == dry_run(capsys, "--recipe", "seed003", "--config", str(flat))
    assert (first["epochs"], first["batch_size"]) == (7, 64)


def test_flags_override_the_config_file_which_overrides_the_recipe(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 7, "lr": 0.3, "batch_size": 64}))
    config = dry_run(capsys, "--recipe", "seed003", "--config", str(path), "--lr", "0.05")
    assert config["model"] == "resnet18"  # recipe
    assert config["epochs"] == 7 and config["batch_size"] == 64  # file
    assert config["lr"] == 0.05  # flag


def test_flags_of_every_kind_parse(capsys):
    config = dry_run(
        capsys,
        "--recipe",
        "seed003",
        "--grad-clip",
        "none",
        "--no-flip",
        "--mean",
        "0.5",
        "--std",
        "0.25",
        "--model-kwargs",
        '{"small_input": false}',
        "--precision",
        "bf16",
        "--out",
        "somewhere",
    )
    assert config["grad_clip"] is None and config["flip"] is False
    assert config["mean"] == [0.5] and config["std"] == [0.25]
    assert config["model_kwargs"] == {"small_input": False}
    assert config["precision"] == "bf16" and config["out_dir"] == "somewhere"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--lr", "-1"], "--lr: must be in"),
        (["--optimizer", "adam"], "--optimizer"),
        (["--epochs", "two"], "--epochs"),
        (["--model-kwargs", "[1]"], "--model-kwargs"),
        (["--recipe", "fats"], "did you mean: fast"),
        (["--config", "missing.json"], "--config: file not found"),
    ],
)
def test_bad_flags_are_one_line_errors_with_exit_2(argv, needle, capsys):
    try:
        code = main(["train", "--dry-run", *argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and needle in err


def test_eval_prints_metrics_per_class_accuracy_and_confusion(tmp_path, monkeypatch, capsys):
    train, test = quadrant_dataset(200, seed=1), quadrant_dataset(80, seed=2)
    config = TrainConfig.from_flat(
        model="tests.train.tiny:tiny_cnn",
        val_size=40,
        batch_size=32,
        epochs=2,
        precision="off",
        channels_last=False,
        progress=False,
        tensorboard=False,
        plots=False,
        device="cpu",
        out_dir=str(tmp_path / "run"),
    )
    result = fit(config, train_set=train, test_set=test)
    capsys.readouterr()
    import cnnkit.data

    monkeypatch.setattr(cnnkit.data, "load_dataset", lambda name, split, data_dir=None: test)
    spec = ["--model", "tests.train.tiny:tiny_cnn"]  # the run's model is code: named again
    assert main(["eval", str(tmp_path / "run"), *spec]) == 0
    out = capsys.readouterr().out
    assert f"top-1 {result.final['test_top1']:.2f}%" in out
    for name in test.classes:
        assert name in out
    assert "confusion matrix" in out and "hardest samples" in out
    assert main(["eval", str(tmp_path / "run" / "best.pt"), "--format", "json", *spec]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["test_top1"] == result.final["test_top1"]
    assert [sum(row) for row in report["confusion"]] == [
        int((test.labels == c).sum()) for c in range(4)
    ]


def test_eval_of_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nothing.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoint not found" in err


# -- issue 14: what a user can get wrong is one line and exit 2, nothing changed ------------------


def one_line_error(capsys, argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, (captured.out, err)
    assert err.count("\n") == 1 and "Traceback" not in err and "internal error" not in err
    return err


def test_dry_run_of_a_recipe_with_another_model_shows_what_will_run(capsys):
    config = dry_run(capsys, "--recipe", "fast", "--model", "resnet18")
    assert config["model"] == "resnet18"
    assert config["model_kwargs"] == {} and config["whiten_bias_epochs"] is None
    config = dry_run(capsys, "--recipe", "best", "--model", "resnet18", "--time-budget", "1800")
    assert config["model_kwargs"] == {} and config["erasing"] == 0.0


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--class-weights", "1,-1,1"], "--class-weights: must be >= 0 and not all 0"),
        (["--mean", "nan"], "--mean: every value must be finite"),
        (["--std", "nan"], "--std: every value must be finite"),
        (["--rotation", "inf"], "--rotation: must be in"),
        (["--lr", "nan"], "--lr: must be in"),
        (["--time-budget", "inf"], "--time-budget: must be in"),
        (["--grad-clip", "inf"], "--grad-clip: must be in"),
        (["--cutmix", "inf"], "--cutmix: must be in"),
        (["--model-kwargs", '{"a": NaN}'], "--model-kwargs: values must be plain JSON"),
    ],
)
def test_out_of_range_flags_are_refused_naming_the_flag(argv, needle, capsys):
    assert needle in one_line_error(capsys, ["train", "--dry-run", *argv])


@pytest.fixture
def tiny_data(monkeypatch):
    import cnnkit.data

    data = {"train": quadrant_dataset(96, seed=1), "test": quadrant_dataset(32, seed=2)}
    monkeypatch.setattr(cnnkit.data, "load_dataset", lambda name, split, data_dir=None: data[split])


TINY_FLAGS = [
    "--model", "tests.train.tiny:tiny_cnn", "--val-size", "0", "--batch-size", "32",
    "--epochs", "1", "--precision", "off", "--no-channels-last", "--device", "cpu",
    "--no-progress", "--no-tensorboard", "--no-plots",
]  # fmt: skip


def test_train_into_an_out_that_is_a_file_is_one_line(tmp_path, capsys, tiny_data):
    (tmp_path / "f").write_text("keep")
    err = one_line_error(capsys, ["train", *TINY_FLAGS, "--out", str(tmp_path / "f")])
    assert "is a file, not a folder" in err and (tmp_path / "f").read_text() == "keep"


def test_resume_on_the_command_line(tmp_path, capsys, tiny_data):
    run = tmp_path / "run"
    assert main(["train", *TINY_FLAGS, "--out", str(run)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    # a recorded module:callable is code: refused unless named again
    err = one_line_error(capsys, ["train", "--resume", str(run), "--epochs", "2"])
    assert "--model tests.train.tiny:tiny_cnn" in err and "name it yourself" in err
    # another model than the run's: refused, naming both
    err = one_line_error(capsys, ["train", "--resume", str(run), "--model", "airnet"])
    assert "--model airnet: the run in" in err and "trained tests.train.tiny:tiny_cnn" in err
    # a complete run: nothing to do, nothing changed
    named = ["--model", "tests.train.tiny:tiny_cnn"]
    err = one_line_error(capsys, ["train", "--resume", str(run), *named])
    assert "the run is complete (1 of 1 epochs done); nothing was changed" in err
    # best.pt holds no training state
    err = one_line_error(capsys, ["train", "--resume", str(run / "best.pt"), *named])
    assert f"resume the run folder or its last.pt: --resume {run}" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    # named again, with more epochs: it resumes and says where from
    assert main(["train", "--resume", str(run), *named, "--epochs", "2"]) == 0
    assert f"resuming from epoch 1 of 2: {run}" in capsys.readouterr().out
