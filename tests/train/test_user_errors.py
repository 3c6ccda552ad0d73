"""What a user can get wrong in training: one line naming the cause, nothing changed on disk.

Each test is named after the behaviour it checks (issue 14: "no internal errors for what a user
can cause" and "silent wrong results"). Runs are tiny: a few batches of 12x12 images.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnkit.errors import CheckpointError, CnnkitError, ConfigError, DataError
from cnnkit.train import TrainConfig, fit, resolve_config
from cnnkit.train.setup import lock_run_folder
from tests.model_guard import model_left_as_found
from tests.train.tiny import quadrant_dataset, quiet_config, tiny_cnn

TRAIN = quadrant_dataset(128, seed=1)
TEST = quadrant_dataset(32, seed=2)
TINY = "tests.train.tiny:tiny_cnn"

# factories and modules a user might name (tests.train.test_user_errors:NAME)
INSTANCE = tiny_cnn()


def fixed_factory() -> torch.nn.Module:
    """Takes neither num_classes nor in_channels: fine for 4-class, 1-channel data."""
    return tiny_cnn()


def ten_class_factory() -> torch.nn.Module:
    return tiny_cnn(num_classes=10)


def raising_factory(num_classes: int = 4, in_channels: int = 1) -> torch.nn.Module:
    raise RuntimeError("the GPU is on fire")


def not_a_module(num_classes: int = 4, in_channels: int = 1) -> int:
    return 42


def narrow_factory(num_classes: int = 4, in_channels: int = 1, width: int = 6) -> torch.nn.Module:
    return tiny_cnn(num_classes, in_channels)


HERE = "tests.train.test_user_errors"


def config_for(tmp_path: Path, **changes) -> TrainConfig:
    base = quiet_config(
        tmp_path / "run", model=TINY, val_size=32, batch_size=32, epochs=1, lr=0.05, hardest=2
    )
    return base.replace(**changes)


def digest(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def refused(call, error=CnnkitError, match: str | None = None) -> str:
    with pytest.raises(error) as caught:
        call()
    text = str(caught.value)
    assert "\n" not in text
    if match is not None:
        assert match in text, text
    return text


# -- recipes and models -----------------------------------------------------------------------


def test_a_recipe_applies_its_airnet_settings_only_to_airnet():
    fast = resolve_config("fast", overrides={"model": "resnet18"})
    assert fast.model.model_kwargs == {} and fast.model.whiten_bias_epochs is None
    assert fast.schedule.lr == 0.75 and fast.evaluation.tta  # the rest of the recipe applies
    # settings the user gave are kept (and a mismatch is then refused when the model is built)
    mine = resolve_config("best", overrides={"model": "resnet18", "model_kwargs": {"x": 1}})
    assert mine.model.model_kwargs == {"x": 1}
    assert resolve_config("fast").model.model_kwargs == {"whitening_components": 8}


def test_a_recipe_trains_another_model(tmp_path):
    config = resolve_config(
        "fast",
        overrides={**dataclasses.asdict(config_for(tmp_path)), "time_budget": None},
    )
    assert fit(config, train_set=TRAIN, test_set=TEST).final["epochs"] == 1


def test_resume_with_another_model_is_refused_naming_both(real_run):
    text = refused(
        lambda: fit(resume=real_run, model="airnet", train_set=TRAIN, test_set=TEST),
        ConfigError,
        "--model airnet: the run in",
    )
    assert "trained softmax_regression" in text


def test_a_factory_gets_only_the_arguments_it_accepts(tmp_path):
    result = fit(
        config_for(tmp_path, model=f"{HERE}:fixed_factory"), train_set=TRAIN, test_set=TEST
    )
    saved = torch.load(result.out_dir / "best.pt", weights_only=True)
    assert saved["model_kwargs"] == {}  # what it was built with, so it rebuilds the same


def test_a_factory_that_cannot_take_the_datas_classes_says_so(tmp_path):
    refused(
        lambda: fit(
            config_for(tmp_path, model=f"{HERE}:ten_class_factory"), train_set=TRAIN, test_set=TEST
        ),
        ConfigError,
        "gives output (1, 10) for one image, but bands needs (1, 4): one logit per class "
        "(it does not accept num_classes or in_channels)",
    )
    assert not (tmp_path / "run").exists()


def test_a_factory_that_cannot_take_the_datas_channels_says_so(tmp_path):
    rgb = quadrant_dataset(64, seed=3)
    rgb = dataclasses.replace(rgb, images=rgb.images.repeat(1, 3, 1, 1))
    refused(
        lambda: fit(
            config_for(tmp_path, model=f"{HERE}:fixed_factory"), train_set=rgb, test_set=rgb
        ),
        ConfigError,
        "a forward pass on one 3x12x12 image of bands failed (it does not accept num_classes "
        "or in_channels): RuntimeError",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (f"{HERE}:raising_factory", "raised RuntimeError: the GPU is on fire"),
        (f"{HERE}:not_a_module", "returned int, not an nn.Module"),
        (f"{HERE}:missing", "has no callable or nn.Module 'missing'"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz' (ModuleNotFoundError"),
        ("broken_syntax_module:f", "cannot import module 'broken_syntax_module' (SyntaxError"),
        (
            "raising_on_import_module:f",
            "'raising_on_import_module' (ZeroDivisionError: division by zero)",
        ),
    ],
)
def test_a_factory_or_import_that_fails_is_one_line(tmp_path, monkeypatch, spec, message):
    (tmp_path / "broken_syntax_module.py").write_text("def f(:\n")
    (tmp_path / "raising_on_import_module.py").write_text("1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    refused(
        lambda: fit(config_for(tmp_path, model=spec), train_set=TRAIN, test_set=TEST),
        ConfigError,
        message,
    )
    assert not (tmp_path / "run").exists()


def test_a_module_instance_is_used_and_left_as_found(tmp_path):
    with model_left_as_found(INSTANCE):
        result = fit(config_for(tmp_path, model=f"{HERE}:INSTANCE"), train_set=TRAIN, test_set=TEST)
    assert result.final["epochs"] == 1
    refused(
        lambda: fit(
            config_for(tmp_path / "b", model=f"{HERE}:INSTANCE", model_kwargs={"width": 3}),
            train_set=TRAIN,
            test_set=TEST,
        ),
        ConfigError,
        "is already an nn.Module; it takes no keyword arguments (got width)",
    )


@pytest.mark.parametrize(
    ("model", "kwargs", "message"),
    [
        (f"{HERE}:narrow_factory", {"widht": 3}, "has no keyword argument 'widht'; did you mean"),
        ("airnet", {"depht": 2}, "model 'airnet': "),
        (TINY, {"num_classes": 3}, "--model-kwargs: num_classes is 3, but bands has 4 classes"),
    ],
)
def test_wrong_model_kwargs_are_one_line(tmp_path, model, kwargs, message):
    config = config_for(tmp_path, model=model, model_kwargs=kwargs)
    text = refused(lambda: fit(config, train_set=TRAIN, test_set=TEST), ConfigError, message)
    assert "depht" in text or "widht" in text or "num_classes" in text
    assert not (tmp_path / "run").exists()


# -- the run folder ---------------------------------------------------------------------------


def test_out_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "taken").write_text("mine")
    for out in (tmp_path / "taken", tmp_path / "taken" / "run"):
        refused(
            lambda out=out: fit(
                config_for(tmp_path, out_dir=str(out)), train_set=TRAIN, test_set=TEST
            ),
            ConfigError,
            "is a file, not a folder",
        )
    assert (tmp_path / "taken").read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_under_a_read_only_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        refused(
            lambda: fit(
                config_for(tmp_path, out_dir=str(locked / "run")), train_set=TRAIN, test_set=TEST
            ),
            ConfigError,
            "is not writable",
        )
    finally:
        locked.chmod(0o755)


def test_out_in_a_folder_that_is_not_writable_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("cnnkit.train.setup.os.access", lambda path, mode: False)
    refused(
        lambda: fit(config_for(tmp_path), train_set=TRAIN, test_set=TEST),
        ConfigError,
        f"--out {tmp_path / 'run'}: the folder {tmp_path} is not writable",
    )
    assert not (tmp_path / "run").exists()


def test_a_run_refused_before_training_leaves_nothing(tmp_path):
    config = config_for(tmp_path, tta=13)
    refused(
        lambda: fit(config, train_set=TRAIN, test_set=TEST),
        ConfigError,
        "--tta: level 13 shifts by 12 pixels, which must be less than 12 for 12x12 images of bands",
    )
    assert not (tmp_path / "run").exists()


def test_a_folder_left_before_the_first_epoch_can_be_reused(tmp_path, monkeypatch):
    def disk_full(path, checkpoint):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:  # the first epoch never gets its checkpoint
        patch.setattr("cnnkit.train.loop.save_checkpoint", disk_full)
        with pytest.raises(OSError):
            fit(config_for(tmp_path), train_set=TRAIN, test_set=TEST)
    assert (tmp_path / "run" / "config.json").exists()
    assert fit(config_for(tmp_path), train_set=TRAIN, test_set=TEST).final["epochs"] == 1


def test_a_users_own_config_json_is_never_overwritten(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text('{"mine": true}')
    refused(
        lambda: fit(config_for(tmp_path), train_set=TRAIN, test_set=TEST),
        ConfigError,
        "holds a config.json that is not a cnnkit run's",
    )
    assert (tmp_path / "run" / "config.json").read_text() == '{"mine": true}'


def test_a_second_training_into_a_locked_folder_is_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    with lock_run_folder(folder):
        before = digest(folder)
        refused(
            lambda: fit(config_for(tmp_path), train_set=TRAIN, test_set=TEST),
            ConfigError,
            f"{folder}: another training (pid {os.getpid()}) is writing this run folder",
        )
        assert digest(folder) == before
    assert not (folder / ".cnnkit-lock").exists()


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_stale_lock_and_temporaries_of_dead_processes_are_taken_over(tmp_path):
    first = fit(config_for(tmp_path), train_set=TRAIN, test_set=TEST)
    folder = first.out_dir
    gone, alive = dead_pid(), os.getppid()
    (folder / ".cnnkit-lock").write_text(str(gone))  # a killed run's lock: no flock held
    (folder / f".last.pt.tmp-{gone}").write_bytes(b"half a checkpoint")
    (folder / f".last.pt.tmp-{alive}").write_bytes(b"a live writer's")
    fit(config_for(tmp_path, epochs=2), resume=folder, train_set=TRAIN, test_set=TEST, model=TINY)
    assert not (folder / f".last.pt.tmp-{gone}").exists()
    assert (folder / f".last.pt.tmp-{alive}").exists()
    assert not (folder / ".cnnkit-lock").exists()


# -- resume -----------------------------------------------------------------------------------


def test_resuming_a_complete_run_changes_nothing(real_run, capsys):
    before = digest(real_run)
    refused(
        lambda: fit(resume=real_run, train_set=TRAIN, test_set=TEST),
        ConfigError,
        "the run is complete (1 of 1 epochs done); nothing was changed (to train on, resume "
        "with a larger --epochs)",
    )
    assert digest(real_run) == before


def test_every_resume_says_where_it_resumes(tmp_path, capsys):
    fit(config_for(tmp_path), train_set=TRAIN, test_set=TEST)
    capsys.readouterr()
    fit(
        config_for(tmp_path, epochs=2),
        resume=tmp_path / "run",
        model=TINY,
        train_set=TRAIN,
        test_set=TEST,
    )
    out = capsys.readouterr().out
    assert f"resuming from epoch 1 of 2: {tmp_path / 'run'}" in out


# -- settings that would give silently wrong results -------------------------------------------


def test_a_constant_channel_blames_the_data_not_std(tmp_path):
    flat = dataclasses.replace(TRAIN, images=torch.full_like(TRAIN.images, 7))
    text = refused(
        lambda: fit(config_for(tmp_path), train_set=flat, test_set=TEST),
        DataError,
        "bands: channel 0 of the training images is constant (every pixel 7/255)",
    )
    assert not text.startswith("--std")


def test_a_budgeted_runs_partial_epoch_is_recorded_as_a_fraction(tmp_path, monkeypatch, capsys):
    clock = iter(range(0, 10**6, 1))  # every perf_counter() call advances one second
    monkeypatch.setattr("cnnkit.train.loop.time.perf_counter", lambda: float(next(clock)))
    config = config_for(tmp_path, epochs=100, time_budget=60.0, val_size=0, batch_size=16)
    result = fit(config, train_set=TRAIN, test_set=TEST)
    rows = list(csv.DictReader((result.out_dir / "metrics.csv").open()))
    fractions = [float(row["epoch_fraction"]) for row in rows]
    assert result.final["stopped"] == "time_budget"
    assert fractions[:-1] == [1.0] * (len(rows) - 1) and 0 < fractions[-1] < 1
    final = json.loads((result.out_dir / "final.json").read_text())
    assert final["last_epoch_fraction"] == fractions[-1]
    # 8 batches per epoch: the fraction is the batches the last epoch ran
    assert fractions[-1] * 8 == round(fractions[-1] * 8)
    out = capsys.readouterr().out
    assert f"[{fractions[-1]:.0%} of the epoch]" in out
    assert f"{len(rows) - 1 + fractions[-1]:.2f} epochs in " in out


def test_a_run_shorter_than_its_warmup_warns(tmp_path, capsys):
    config = config_for(tmp_path, warmup=0.5, schedule_epochs=10, val_size=0)
    fit(config, train_set=TRAIN, test_set=TEST)
    err = capsys.readouterr().err
    assert "cnnkit: warning: --warmup 0.5: the run's 4 optimiser step(s) all fall in" in err
    assert err.count("\n") == 1


def test_a_run_longer_than_its_warmup_does_not_warn(tmp_path, capsys):
    fit(config_for(tmp_path, warmup=0.2, val_size=0), train_set=TRAIN, test_set=TEST)
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"class_weights": [1.0, -1.0, 1.0, 1.0]}, "--class-weights: must be >= 0 and not all 0"),
        ({"class_weights": [0.0, 0.0, 0.0, 0.0]}, "--class-weights: must be >= 0 and not all 0"),
        ({"class_weights": [1.0, float("inf"), 1, 1]}, "--class-weights: every value must be"),
        ({"mean": [float("nan")]}, "--mean: every value must be finite"),
        ({"std": [float("nan")]}, "--std: every value must be finite"),
        ({"rotation": float("inf")}, "--rotation: must be in"),
        ({"rotation": 270.0}, "--rotation: must be in [0, 180] degrees"),
        ({"lr": float("inf")}, "--lr: must be in"),
        ({"time_budget": float("inf")}, "--time-budget: must be in"),
        ({"grad_clip": float("nan")}, "--grad-clip: must be in"),
        ({"mixup": float("inf")}, "--mixup: must be in"),
        ({"weight_decay": float("inf")}, "--weight-decay: must be in"),
        ({"bias_lr_scale": float("inf")}, "--bias-lr-scale: must be in"),
        ({"model_kwargs": {"scale": float("nan")}}, "--model-kwargs: values must be plain JSON"),
        ({"model_kwargs": {"f": print}}, "--model-kwargs: values must be plain JSON"),
        ({"seed": 2**70}, "--seed: must be in [-2^63, 2^63)"),
        ({"split_seed": -(2**64)}, "--split-seed: must be in [-2^63, 2^63)"),
    ],
)
def test_out_of_range_settings_name_the_flag(changes, message):
    refused(lambda: TrainConfig.from_flat(**changes), ConfigError, message)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"config": {"epochs": 1}}, "fit: config must be a TrainConfig, got dict"),
        ({"train_set": TRAIN.images}, "fit: train_set must be an ImageDataset, got Tensor"),
        ({"test_set": [1]}, "fit: test_set must be an ImageDataset, got list"),
        ({"resume": 3}, "fit: resume must be a run folder or checkpoint path, got int"),
        ({"model": tiny_cnn}, "fit: model must be a model name or package.module:callable"),
    ],
)
def test_wrong_argument_types_to_fit_name_the_parameter(kwargs, message):
    refused(lambda: fit(**kwargs), ConfigError, message)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": "3"}, "--epochs: expected int, got '3'"),
        ({"epochs": 2.5}, "--epochs: expected int, got 2.5"),
        ({"lr": "fast"}, "--lr: expected float"),
        ({"flip": 1}, "--flip: expected bool, got 1"),
        ({"mean": 0.5}, "--mean: expected list"),
        ({"model": tiny_cnn}, "--model: expected str"),
        ({"model_kwargs": [1]}, "--model-kwargs: expected dict"),
        ({"optimizer": "adam"}, "--optimizer: must be one of sgd, adamw"),
    ],
)
def test_wrong_argument_types_to_trainconfig_name_the_parameter(kwargs, message):
    refused(lambda: TrainConfig.from_flat(**kwargs), ConfigError, message)


def test_a_checkpoint_error_is_a_cnnkit_error():
    assert issubclass(CheckpointError, CnnkitError)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"threads": 10**6}, "--threads: 1000000 is more than the"),
        ({"crop_padding": 10**4}, "--crop-padding: must be at most 12 for 12x12 images of bands"),
    ],
)
def test_settings_beyond_the_machine_or_the_images_are_refused_before_allocating(
    tmp_path, changes, message
):
    config = config_for(tmp_path, **changes)
    refused(lambda: fit(config, train_set=TRAIN, test_set=TEST), ConfigError, message)
    assert not (tmp_path / "run").exists()


def test_evaluating_on_data_with_other_classes_is_refused(real_run, monkeypatch):
    import cnnkit.data
    from cnnkit.train import evaluate

    other = dataclasses.replace(TEST, classes=["w", "x", "y", "z"])
    monkeypatch.setattr(cnnkit.data, "load_dataset", lambda name, split, data_dir=None: other)
    refused(
        lambda: evaluate(real_run, device="cpu"),
        CheckpointError,
        "the model was trained on 4 classes (band 1, band 2, band 3, ...), fashion_mnist test "
        "has 4 (w, x, y, ...)",
    )


def test_evaluate_takes_the_users_factory_or_module_and_leaves_it_as_found(real_run, monkeypatch):
    import cnnkit.data
    from cnnkit.models import create_model
    from cnnkit.train import evaluate

    monkeypatch.setattr(cnnkit.data, "load_dataset", lambda name, split, data_dir=None: TEST)
    recorded = evaluate(real_run, device="cpu")  # a zoo name: rebuilt from the checkpoint
    instance = create_model("softmax_regression", num_classes=4, input_size=12)
    with model_left_as_found(instance):
        mine = evaluate(real_run, device="cpu", model=instance)

    def factory(**kwargs):
        return create_model("softmax_regression", **kwargs)

    theirs = evaluate(real_run, device="cpu", model=factory)
    assert mine.metrics.top1 == theirs.metrics.top1 == recorded.metrics.top1
    assert mine.metrics.loss == pytest.approx(recorded.metrics.loss, rel=1e-6)


def test_curves_plot_a_partial_epoch_at_its_fraction(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from cnnkit.train.plots import plot_curves

    plotted = []
    original = Axes.plot

    def record(self, x, *args, **kwargs):
        plotted.append(list(x))
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", record)
    row = {"train_loss": 1.0, "train_top1": 50.0, "val_loss": None, "val_top1": None}
    history = [{**row, "epoch": 1}, {**row, "epoch": 2, "epoch_fraction": 0.25}]
    plot_curves(history, tmp_path / "curves.png")
    assert plotted and all(x == [1.0, 1.25] for x in plotted)
