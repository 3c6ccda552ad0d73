"""Robustness evaluation: severity 0 is `evaluate()`'s top-1, corrupted top-1 against the
computation written out, batch-size independence, CE/mCE against ImageNet-C's formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnkit.data import load_dataset
from cnnkit.data.corruptions import corrupt
from cnnkit.errors import CheckpointError, ConfigError, UnknownNameError
from cnnkit.train import evaluate
from cnnkit.train.checkpoint import load_checkpoint
from cnnkit.train.evaluation import model_from_checkpoint
from cnnkit.train.robustness import RobustnessResult, evaluate_robustness, parse_severities
from tests.train.robust_run import needs_fashion


def _oracle_top1(path, pixels, limit):
    """Top-1 with flip TTA, every step written out: model(x) + model(flip x), argmax."""
    saved = load_checkpoint(path)
    model = model_from_checkpoint(saved, path, "model").eval()
    test = load_dataset("fashion_mnist", "test")
    images = test.images[:limit].float() / 255
    labels = test.labels[:limit]
    images = (pixels(images) - saved["mean"][0]) / saved["std"][0]
    with torch.no_grad():
        logits = model(images) + model(images.flip(-1))
    return 100.0 * (logits.argmax(1) == labels).double().mean().item()


@needs_fashion
@pytest.mark.slow
def test_severity_zero_is_the_clean_top1_of_evaluate_on_the_whole_test_set(robust_checkpoint):
    path = robust_checkpoint
    result = evaluate_robustness(path, corruptions=["contrast"], severities=[5])
    report = evaluate(path)
    assert result.images == 10000 and result.tta
    assert result.clean_top1 == report.metrics.top1
    assert result.top1["contrast"][0] < result.clean_top1


@needs_fashion
@pytest.mark.slow
def test_corrupted_top1_is_the_model_on_the_corrupted_images_and_batching_changes_nothing(
    robust_checkpoint,
):
    path = robust_checkpoint
    kwargs = {"corruptions": ["gaussian_noise", "rotation"], "severities": [2, 4], "limit": 300}
    result = evaluate_robustness(path, batch_size=128, seed=5, **kwargs)
    assert evaluate_robustness(path, batch_size=300, seed=5, **kwargs).top1 == result.top1
    for name in ("gaussian_noise", "rotation"):
        for position, severity in enumerate((2, 4)):
            expected = _oracle_top1(
                path, lambda x, n=name, s=severity: corrupt(x, n, s, seed=5), 300
            )
            assert result.top1[name][position] == pytest.approx(expected, abs=1e-9)


@needs_fashion
@pytest.mark.slow
def test_resolution_halves_the_images_and_reports_what_the_model_cannot_take(
    robust_checkpoint, tmp_path
):
    path = robust_checkpoint
    result = evaluate_robustness(
        path, corruptions=["brightness"], severities=[1], resolution=0.5, limit=200,
        grid=tmp_path / "grid.png", grid_index=3,
    )  # fmt: skip
    res = result.resolution
    assert res is not None and res.reduced_size == (14, 14) and res.full_top1 == result.clean_top1

    def down_up(x):
        small = F.interpolate(x, size=(14, 14), mode="bilinear", antialias=True)
        return F.interpolate(small, size=(28, 28), mode="bilinear")

    assert res.upsampled_top1 == pytest.approx(_oracle_top1(path, down_up, 200), abs=1e-9)
    assert res.native_top1 is None and res.native_error  # LeNet-5's flatten needs 28x28
    assert res.full_images_per_second > 0
    png = (tmp_path / "grid.png").read_bytes()
    assert png.startswith(b"\x89PNG") and result.grid_path == str(tmp_path / "grid.png")


def _result(clean, top1, baseline=None):
    return RobustnessResult(
        "m.pt", "d", 10, False, 0, (1, 2), clean, top1, 1, 0.0, baseline=baseline
    )


def test_ce_and_mce_follow_imagenet_c():
    base = _result(90.0, {"a": (80.0, 60.0), "b": (70.0, 50.0)})
    model = _result(95.0, {"a": (90.0, 80.0), "b": (85.0, 75.0)}, baseline=base)
    # CE_a = (10 + 20) / (20 + 40); CE_b = (15 + 25) / (30 + 50)
    assert model.ce() == pytest.approx({"a": 50.0, "b": 50.0})
    assert model.mce == pytest.approx(50.0)
    # relative: (5 + 15) / (10 + 30) and (10 + 20) / (20 + 40)
    assert model.relative_ce() == pytest.approx({"a": 50.0, "b": 50.0})
    assert model.to_dict()["mce"] == pytest.approx(50.0)
    assert _result(90.0, {"a": (1.0, 2.0)}).mce is None
    assert model.mean_accuracy == pytest.approx((90 + 80 + 85 + 75) / 4)


def test_severities_parse_and_bad_ones_are_named():
    assert parse_severities("1-5") == (1, 2, 3, 4, 5)
    assert parse_severities("5,1,3") == (1, 3, 5)
    for bad in ("0-5", "6", "x", "3-1", ""):
        with pytest.raises(ConfigError, match="--severities"):
            parse_severities(bad)


def test_unknown_corruption_and_a_file_that_is_no_checkpoint(tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean: elastic"):
        evaluate_robustness(tmp_path / "x.pt", corruptions=["elastik"])
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"bad\.pt"):
        evaluate_robustness(bad, corruptions=["jpeg"])


def _tiny_run(out, name):
    """One epoch of softmax regression on the tiny band images, named ``name`` as a dataset."""
    from cnnkit.data import ImageDataset
    from cnnkit.train import TrainConfig, fit
    from tests.train.tiny import quadrant_dataset

    def named(dataset):
        return ImageDataset(dataset.images, dataset.labels, dataset.classes, name, dataset.split)

    config = TrainConfig.from_flat(
        model="softmax_regression", model_kwargs={"input_size": 12}, val_size=0, epochs=1,
        batch_size=32, precision="off", channels_last=False, device="cpu", progress=False,
        tensorboard=False, plots=False, out_dir=str(out),
    )  # fmt: skip
    fit(config, train_set=named(quadrant_dataset(64, 1)), test_set=named(quadrant_dataset(32, 2)))
    return out


def test_bad_baseline_resolution_and_grid_index_are_refused_before_any_evaluation(
    tmp_path, monkeypatch
):
    """An mCE against a baseline trained on other data compares two different test sets: it
    is refused, like a bad --resolution or --grid-index, before the first image is evaluated
    (not after minutes of corruptions)."""
    from cnnkit.train import robustness

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluated before the arguments were checked")

    monkeypatch.setattr(robustness, "_top1", no_evaluation)
    ours, theirs = _tiny_run(tmp_path / "a", "bands"), _tiny_run(tmp_path / "b", "stripes")
    with pytest.raises(ConfigError) as caught:
        evaluate_robustness(ours, corruptions=["jpeg"], baseline=theirs)
    message = str(caught.value)
    assert message.startswith(f"--baseline {theirs}: trained on stripes, the checkpoint on bands")
    assert "\n" not in message
    with pytest.raises(ConfigError, match="--resolution: must be between 0 and 1"):
        evaluate_robustness(ours, corruptions=["jpeg"], resolution=1.5)

    # a baseline on the same data passes the check (the run's data cannot be reloaded here)
    def set_up(*args, **kwargs):
        raise ConfigError("reached the set-up")

    monkeypatch.setattr(robustness, "_setup", set_up)
    same = _tiny_run(tmp_path / "c", "bands")
    with pytest.raises(ConfigError, match=r"^reached the set-up$"):
        evaluate_robustness(ours, corruptions=["jpeg"], baseline=same)


@needs_fashion
def test_a_grid_index_outside_the_test_set_is_refused_before_any_evaluation(
    robust_checkpoint, tmp_path, monkeypatch
):
    from cnnkit.train import robustness

    monkeypatch.setattr(robustness, "_top1", lambda *a, **k: pytest.fail("evaluated"))
    with pytest.raises(ConfigError, match="--grid-index: must be between 0 and 49, got 50"):
        evaluate_robustness(
            robust_checkpoint, corruptions=["jpeg"], limit=50, grid=tmp_path / "g.png",
            grid_index=50,
        )  # fmt: skip


@needs_fashion
def test_a_run_trained_on_tensors_is_not_measured_on_the_dataset_its_config_names(tmp_path):
    """fit(train_set=...) records the data's name; its config still names the default dataset,
    Fashion-MNIST, whose 28x28 test images the model would take without complaint."""
    from cnnkit.data import ImageDataset
    from tests.train.tiny import quadrant_dataset

    def blobs(count, seed):
        bands = quadrant_dataset(count, seed, size=28)
        return ImageDataset(bands.images, bands.labels, bands.classes, "blobs", bands.split)

    config = {"model": "softmax_regression", "val_size": 0, "epochs": 1, "batch_size": 32}
    config |= {"precision": "off", "channels_last": False, "device": "cpu", "progress": False}
    config |= {"tensorboard": False, "plots": False, "out_dir": str(tmp_path / "run")}
    from cnnkit.train import TrainConfig, fit

    fit(TrainConfig.from_flat(**config), train_set=blobs(64, 1), test_set=blobs(32, 2))
    with pytest.raises(CheckpointError, match="the run trained on blobs, images given in Python"):
        evaluate_robustness(tmp_path / "run", corruptions=["jpeg"], limit=10)
