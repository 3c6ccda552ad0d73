"""fit() on a tiny model and data: the run folder contract, exact resume, NaN, budget, stops."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from cnnkit.errors import ConfigError, TrainingError
from cnnkit.train import TrainConfig, fit
from tests.train.tiny import Exploding, quadrant_dataset, quiet_config, stop_after_epoch

TRAIN = quadrant_dataset(320, seed=1)
TEST = quadrant_dataset(96, seed=2)


def tiny_config(tmp_path, **changes) -> TrainConfig:
    base = quiet_config(
        tmp_path / "run",
        model="tests.train.tiny:tiny_cnn",
        val_size=64,
        batch_size=32,
        epochs=3,
        lr=0.05,
        schedule="cosine",
        flip=True,
        crop_padding=1,
        hardest=4,
    )
    return base.replace(**changes)


def test_run_folder_holds_the_documented_files(tmp_path):
    result = fit(tiny_config(tmp_path, plots=True), train_set=TRAIN, test_set=TEST)
    run = tmp_path / "run"
    for name in ("config.json", "metrics.csv", "final.json", "last.pt", "best.pt"):
        assert (run / name).is_file(), name
    for name in ("curves.png", "confusion.png", "hardest.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    final = json.loads((run / "final.json").read_text())
    for key in ("test_top1", "test_top5", "test_loss", "epochs", "wall_seconds"):
        assert isinstance(final[key], int | float), key
    assert final["images_per_second"] > 0
    assert final["epochs"] == 3 and final["stopped"] == "completed"
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    config = json.loads((run / "config.json").read_text())
    # written nested, by section; the mean and std resolved, not None
    assert config["data"]["mean"] is not None and config["data"]["std"] is not None
    assert TrainConfig.from_dict(config) == result.config
    # the test metrics in final.json are those of best.pt, re-measured independently here
    from cnnkit.train.checkpoint import load_checkpoint
    from cnnkit.train.evaluation import model_from_checkpoint

    best = load_checkpoint(run / "best.pt")
    model = model_from_checkpoint(best, run / "best.pt", "model", "tests.train.tiny:tiny_cnn")
    model.eval()
    images = (TEST.images.float() / 255 - best["mean"][0]) / best["std"][0]
    with torch.no_grad():
        logits = model(images)
    expected_top1 = 100.0 * int((logits.argmax(1) == TEST.labels).sum()) / len(TEST)
    expected_loss = float(torch.nn.functional.cross_entropy(logits, TEST.labels))
    assert final["test_top1"] == pytest.approx(expected_top1, abs=1e-9)
    assert final["test_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert result.test_top1 == final["test_top1"]
    assert final["best_epoch"] == max(range(3), key=lambda i: float(rows[i]["val_top1"])) + 1


def test_checkpoints_load_with_weights_only(tmp_path):
    fit(tiny_config(tmp_path, ema=0.9), train_set=TRAIN, test_set=TEST)
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    for key in ("model", "optimizer", "ema", "rng", "epoch", "config", "progress"):
        assert key in last, key
    assert last["model_name"] == "tests.train.tiny:tiny_cnn" and last["epoch"] == 3
    assert isinstance(last["rng"]["torch"], torch.Tensor)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"ema": 0.9, "accumulation_steps": 2, "grad_clip": 0.5},
        # the resumed third epoch must freeze the whitening bias as the uninterrupted one did
        {"model": "airnet", "batch_size": 64, "whiten_bias_epochs": 2},
    ],
)
def test_interrupted_and_resumed_run_ends_exactly_like_an_uninterrupted_one(
    tmp_path, monkeypatch, extra
):
    settings = dict(deterministic=True, label_smoothing=0.1, **extra)
    whole = fit(tiny_config(tmp_path / "a", **settings), train_set=TRAIN, test_set=TEST)
    config = tiny_config(tmp_path / "b", **settings)
    with monkeypatch.context() as patch:
        stop_after_epoch(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            fit(config, train_set=TRAIN, test_set=TEST)
    torch.manual_seed(1234)  # the resumed run must not depend on the RNG it starts with
    # the run's model is code (module:callable): a resume builds it only when named again
    resumed = fit(
        resume=tmp_path / "b" / "run", model=config.model.model, train_set=TRAIN, test_set=TEST
    )
    timings = ("images_per_second", "epoch_seconds", "elapsed_seconds")
    strip = lambda rows: [{k: v for k, v in row.items() if k not in timings} for row in rows]  # noqa: E731
    assert strip(resumed.history) == strip(whole.history)
    assert resumed.final["test_top1"] == whole.final["test_top1"]
    assert resumed.final["test_loss"] == whole.final["test_loss"]
    a = torch.load(tmp_path / "a" / "run" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


def test_nan_loss_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    # 256 training images in batches of 64: 4 steps per epoch; the 10th forward is NaN.
    config = tiny_config(tmp_path, model="tests.train.tiny:Exploding", batch_size=64, epochs=5)
    Exploding.fail_at = 10
    with pytest.raises(TrainingError) as caught:
        fit(config, train_set=TRAIN, test_set=TEST)
    message = str(caught.value)
    assert "\n" not in message
    assert "at step 10 (epoch 3, batch 2)" in message and "loss is nan" in message
    assert "last.pt (epoch 2)" in message
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert last["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in last["model"].values())


def test_time_budget_stops_cleanly_and_ends_annealed(tmp_path):
    config = tiny_config(
        tmp_path, epochs=10**6, time_budget=1.5, schedule="linear", batch_size=16, val_size=0
    )
    result = fit(config, train_set=TRAIN, test_set=TEST)
    assert result.final["stopped"] == "time_budget"
    assert result.history[-1]["elapsed_seconds"] >= 1.5
    # the schedule follows elapsed time: the last step ran at a small fraction of the peak
    assert result.history[-1]["lr"] < 0.25 * config.schedule.lr
    assert (tmp_path / "run" / "best.pt").is_file()


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path):
    # lr 0: the model never changes, so validation never improves after epoch 1
    config = tiny_config(
        tmp_path, model="tests.train.tiny:tiny_linear", lr=1e-12, epochs=20, patience=2
    )
    result = fit(config, train_set=TRAIN, test_set=TEST)
    assert result.final["stopped"] == "early_stopping"
    assert result.final["epochs"] == 3 and result.final["best_epoch"] == 1


def test_an_existing_run_is_never_overwritten(tmp_path):
    fit(tiny_config(tmp_path, epochs=1), train_set=TRAIN, test_set=TEST)
    with pytest.raises(ConfigError, match=r"already holds a run.*--resume"):
        fit(tiny_config(tmp_path, epochs=1), train_set=TRAIN, test_set=TEST)


def test_gradient_accumulation_equals_the_large_batch_step(tmp_path):
    # No BatchNorm, no augmentation, no shuffling difference: 2 x 32 accumulated == 1 x 64.
    common = dict(
        model="tests.train.tiny:tiny_linear", flip=False, crop_padding=0, epochs=1, val_size=0
    )
    small = fit(
        tiny_config(tmp_path / "a", batch_size=32, accumulation_steps=2, **common),
        train_set=TRAIN,
        test_set=TEST,
    )
    large = fit(
        tiny_config(tmp_path / "b", batch_size=64, **common), train_set=TRAIN, test_set=TEST
    )
    assert small.final["steps"] == large.final["steps"] == 5
    a = torch.load(tmp_path / "a" / "run" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_class_weights_must_match_the_classes(tmp_path):
    with pytest.raises(ConfigError, match="--class-weights: 2 weights for 4 classes"):
        fit(tiny_config(tmp_path, class_weights=[1.0, 2.0]), train_set=TRAIN, test_set=TEST)


def test_run_leaves_global_torch_settings_as_it_found_them(tmp_path):
    threads = torch.get_num_threads()
    fit(
        tiny_config(tmp_path, deterministic=True, threads=1, epochs=1),
        train_set=TRAIN,
        test_set=TEST,
    )
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == threads
    assert math.isfinite(threads)


def test_tensorboard_events_hold_the_epoch_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = fit(tiny_config(tmp_path, tensorboard=True, epochs=2), train_set=TRAIN, test_set=TEST)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    val_top1 = [e.value for e in events.Scalars("val/top1")]
    assert val_top1 == pytest.approx([row["val_top1"] for row in result.history])
    assert "train/loss" in events.Tags()["scalars"]


def test_the_zoo_loads_a_run_checkpoint_by_its_model_key(tmp_path):
    from cnnkit.models import create_model

    config = tiny_config(tmp_path, model="airnet", epochs=1, batch_size=64)
    fit(config, train_set=TRAIN, test_set=TEST)
    saved = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    model = create_model("airnet", num_classes=4, weights=str(tmp_path / "run" / "best.pt"))
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved["model"][key]), key


@pytest.mark.parametrize(("drop_last", "steps"), [(True, 4), (False, 5)])
def test_the_last_incomplete_batch_is_kept_only_when_asked(tmp_path, drop_last, steps):
    # 256 training images in batches of 60: four full batches and one of 16
    config = tiny_config(tmp_path, batch_size=60, epochs=1, drop_last=drop_last)
    result = fit(config, train_set=TRAIN, test_set=TEST)
    assert result.final["steps"] == steps


def test_the_whitening_bias_trains_only_for_its_epochs(tmp_path):
    settings = dict(model="airnet", batch_size=64, deterministic=True, schedule_epochs=2)
    one = fit(tiny_config(tmp_path / "one", epochs=1, **settings), train_set=TRAIN, test_set=TEST)
    two = fit(
        tiny_config(tmp_path / "two", epochs=2, whiten_bias_epochs=1, **settings),
        train_set=TRAIN,
        test_set=TEST,
    )
    free = fit(tiny_config(tmp_path / "free", epochs=2, **settings), train_set=TRAIN, test_set=TEST)
    load = lambda result: torch.load(result.out_dir / "last.pt", weights_only=True)["model"]  # noqa: E731
    after_one, frozen, trained = load(one), load(two), load(free)
    # the same first epoch; then the bias stays where epoch 1 left it while the convs move on
    assert torch.equal(frozen["whiten.bias"], after_one["whiten.bias"])
    assert not torch.equal(trained["whiten.bias"], after_one["whiten.bias"])
    assert not torch.equal(frozen["layer1.conv1.weight"], after_one["layer1.conv1.weight"])


def test_whitening_bias_epochs_needs_airnet(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"--whiten-bias-epochs: --model tests\.train\.tiny:tiny_cnn has no parameters",
    ):
        fit(tiny_config(tmp_path, whiten_bias_epochs=1), train_set=TRAIN, test_set=TEST)


def test_grad_flow_records_every_n_steps(tmp_path):
    config = quiet_config(
        tmp_path / "run",
        model="tests.train.tiny:tiny_cnn",
        val_size=0,
        batch_size=32,
        epochs=2,
        grad_flow=2,
    )
    fit(config, train_set=quadrant_dataset(128, seed=1), test_set=quadrant_dataset(32, seed=2))
    rows = list(csv.DictReader((tmp_path / "run" / "grad_flow.csv").open()))
    # 4 steps per epoch, 8 in all: steps 0, 2, 4, 6, each with the 3 parameterised layers
    assert sorted({int(r["step"]) for r in rows}) == [0, 2, 4, 6]
    assert {r["layer"] for r in rows} == {"0", "1", "6"} and len(rows) == 12
    assert all(float(r["grad_norm"]) > 0 for r in rows)
    assert (tmp_path / "run" / "grad_flow.png").exists()
