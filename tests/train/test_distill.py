"""Knowledge distillation (E6): the loss against its formula, and the teacher inside ``fit``.

Oracles: the loss written out here from the paper's definition (softmax, log and sums by hand,
in float64) and the gradient Hinton et al. derive for it; for the trainer, a run without a
teacher (``A = 0`` must be bit-identical to it), the teacher's own state (unchanged after
training, tests/model_guard.py), and what the student and the teacher were actually given
(recorded by the modules themselves).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.cli.main import main
from cnnkit.errors import CheckpointError, ConfigError
from cnnkit.train import TrainConfig, distillation_loss, fit
from tests.model_guard import assert_same, model_left_as_found, snapshot
from tests.train.tiny import quadrant_dataset, quiet_config, stop_after_epoch, tiny_cnn

TRAIN = quadrant_dataset(256, seed=1)
TEST = quadrant_dataset(96, seed=2)
TINY = "tests.train.tiny:tiny_cnn"


# -- the loss -----------------------------------------------------------------------------------


def written_out(student, teacher, targets, alpha, temperature, smoothing):
    """(1 - A) CE + A T^2 KL(p_t || p_s), by hand in float64: sums over classes, mean over
    images. CE with label smoothing ``e``: the target ``(1 - e) y + e / C``."""
    s, t = student.double(), teacher.double()
    batch, classes = s.shape
    log_q = s - s.exp().sum(1, keepdim=True).log()
    if targets.dim() == 1:
        y = torch.zeros(batch, classes, dtype=torch.float64)
        y[torch.arange(batch), targets] = 1.0
    else:
        y = targets.double()
    y = (1 - smoothing) * y + smoothing / classes
    ce = -(y * log_q).sum() / batch
    p_t = (t / temperature).exp() / (t / temperature).exp().sum(1, keepdim=True)
    p_s = (s / temperature).exp() / (s / temperature).exp().sum(1, keepdim=True)
    kl = (p_t * (p_t.log() - p_s.log())).sum() / batch
    return (1 - alpha) * ce + alpha * temperature**2 * kl


@st.composite
def problems(draw):
    batch = draw(st.integers(1, 6))
    classes = draw(st.integers(2, 10))
    seed = draw(st.integers(0, 2**31 - 1))
    spread = draw(st.floats(0.1, 8.0))
    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(batch, classes, generator=generator) * spread
    teacher = torch.randn(batch, classes, generator=generator) * spread
    if draw(st.booleans()):
        targets = torch.randint(0, classes, (batch,), generator=generator)
    else:  # MixUp/CutMix targets: a probability vector per image
        targets = torch.rand(batch, classes, generator=generator).softmax(1)
    return student, teacher, targets


@settings(max_examples=80, deadline=None)
@given(
    problems(),
    st.floats(0.0, 1.0),
    st.floats(0.5, 10.0),
    st.sampled_from([0.0, 0.1, 0.2]),
)
def test_the_loss_is_hintons_formula(problem, alpha, temperature, smoothing):
    student, teacher, targets = problem
    got = distillation_loss(
        student, teacher, targets, alpha, temperature, label_smoothing=smoothing
    )
    want = written_out(student, teacher, targets, alpha, temperature, smoothing)
    assert got.dtype == torch.float32 and got.dim() == 0
    assert float(got) == pytest.approx(float(want), rel=1e-4, abs=1e-5)


@settings(max_examples=40, deadline=None)
@given(problems(), st.floats(0.5, 10.0))
def test_the_soft_gradient_is_t_times_q_minus_p_over_the_batch(problem, temperature):
    """Hinton et al. (2015), eq. 2: d(T^2 KL)/dz_i = T (q_i - p_i), per image; batchmean
    divides by the number of images (not by images x classes)."""
    student, teacher, targets = problem
    student = student.clone().requires_grad_(True)
    distillation_loss(student, teacher, targets, 1.0, temperature).backward()
    q = (student.detach().double() / temperature).softmax(1)
    p = (teacher.double() / temperature).softmax(1)
    want = temperature * (q - p) / len(student)
    torch.testing.assert_close(student.grad.double(), want, rtol=1e-4, atol=1e-6)


def test_alpha_zero_is_the_plain_cross_entropy_bit_for_bit():
    generator = torch.Generator().manual_seed(3)
    student, teacher = torch.randn(2, 8, 10, generator=generator)
    targets = torch.randint(0, 10, (8,), generator=generator)
    weights = torch.rand(10, generator=generator) + 0.5
    plain = nn.functional.cross_entropy(student, targets, weight=weights, label_smoothing=0.1)
    taught = distillation_loss(
        student, teacher, targets, 0.0, 4.0, class_weights=weights, label_smoothing=0.1
    )
    assert torch.equal(plain, taught)


# -- the teacher in fit -------------------------------------------------------------------------


def config_for(out: Path, **changes) -> TrainConfig:
    base = quiet_config(
        out,
        model=TINY,
        val_size=64,
        batch_size=32,
        epochs=2,
        lr=0.05,
        mixup=0.4,
        crop_padding=2,
        threads=1,
        deterministic=True,
    )
    return base.replace(**changes)


@pytest.fixture(scope="module")
def zoo_teacher(tmp_path_factory) -> Path:
    """best.pt of a zoo model (softmax regression), one epoch on the same kind of data."""
    out = tmp_path_factory.mktemp("teacher") / "zoo"
    config = config_for(
        out, model="softmax_regression", model_kwargs={"input_size": 12}, epochs=1, mixup=0.0
    )
    fit(config, train_set=TRAIN, test_set=TEST)
    return out / "best.pt"


def figures(folder: Path) -> tuple[dict, dict]:
    final = json.loads((folder / "final.json").read_text())
    tested = {k: final[k] for k in ("test_top1", "test_top5", "test_loss", "per_class_top1")}
    states = {
        name: torch.load(folder / name, weights_only=True)["model"]
        for name in ("best.pt", "last.pt")
    }
    return tested, states


def same_states(a: dict, b: dict) -> bool:
    return all(
        a[name].keys() == b[name].keys()
        and all(torch.equal(a[name][k], b[name][k]) for k in a[name])
        for name in a
    )


def test_alpha_zero_trains_bit_identically_to_no_teacher(tmp_path, zoo_teacher):
    plain = fit(config_for(tmp_path / "plain"), train_set=TRAIN, test_set=TEST)
    taught = config_for(tmp_path / "zero", teacher=str(zoo_teacher), distill_alpha=0.0)
    fit(taught, train_set=TRAIN, test_set=TEST)
    tested, states = figures(tmp_path / "plain")
    tested_zero, states_zero = figures(tmp_path / "zero")
    assert tested == tested_zero and same_states(states, states_zero)
    assert plain.history[-1]["train_loss"] > 0
    # the comparison can fail: with A = 0.5 the same run ends elsewhere
    fit(
        taught.replace(out_dir=str(tmp_path / "half"), distill_alpha=0.5),
        train_set=TRAIN,
        test_set=TEST,
    )
    assert not same_states(states, figures(tmp_path / "half")[1])
    saved = torch.load(tmp_path / "half" / "last.pt", weights_only=True)
    assert saved["config"]["distillation"]["teacher"] == str(zoo_teacher)
    assert "teacher_sha256" not in torch.load(tmp_path / "plain" / "last.pt", weights_only=True)


def test_the_teacher_is_left_exactly_as_it_was(tmp_path, monkeypatch):
    """The user's module is copied; the copy that teaches (BatchNorm, Dropout) stays frozen:
    eval mode, no gradients, running statistics and weights unchanged by training."""
    import cnnkit.train.loop as loop

    torch.manual_seed(1)
    module = tiny_cnn()
    module.train()
    built = []

    def recorded(*args, **kwargs):
        teacher = loop_load_teacher(*args, **kwargs)
        built.append((teacher, snapshot(teacher.module)))
        return teacher

    loop_load_teacher = loop.load_teacher
    monkeypatch.setattr(loop, "load_teacher", recorded)
    with model_left_as_found(module):
        result = fit(config_for(tmp_path / "run"), train_set=TRAIN, test_set=TEST, teacher=module)
    ((teacher, before),) = built
    assert_same(before, snapshot(teacher.module))
    assert not teacher.module.training
    assert not any(p.requires_grad or p.grad is not None for p in teacher.module.parameters())
    assert result.config.distillation.teacher_model == "user:torch.nn.modules.container.Sequential"


# What the student and the teacher were given, recorded by the modules themselves (the trainer
# works on copies, so the record is module-level).
SEEN: list[tuple[str, torch.Tensor, bool, bool]] = []


class Recording(nn.Module):
    """tiny_cnn that records each forward's input, grad mode and training flag under ``role``."""

    def __init__(self, num_classes: int = 4, in_channels: int = 1, role: str = "student"):
        super().__init__()
        self.role = role
        self.net = tiny_cnn(num_classes, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        SEEN.append((self.role, x.detach().clone(), torch.is_grad_enabled(), self.training))
        return self.net(x)


@pytest.mark.parametrize("own_statistics", [False, True])
def test_the_teacher_sees_the_students_augmented_batch_once_per_step(tmp_path, own_statistics):
    """Same crops, flips and MixUp as the student, in the teacher's own normalisation."""
    teacher_module = Recording(role="teacher")
    checkpoint = None
    if own_statistics:  # a checkpoint teacher whose mean/std differ from the student's
        first = config_for(tmp_path / "teacher", epochs=1, mixup=0.0, mean=[0.3], std=[0.2])
        fit(first, train_set=TRAIN, test_set=TEST, model=Recording(role="teacher"))
        checkpoint = str(tmp_path / "teacher" / "best.pt")
    SEEN.clear()
    config = config_for(tmp_path / "run", teacher=checkpoint, cutmix=1.0)
    result = fit(config, train_set=TRAIN, test_set=TEST, model=Recording(), teacher=teacher_module)
    steps = result.history[-1]["steps"]
    taught = [x for role, x, grad, training in SEEN if role == "teacher"]
    trained = [x for role, x, grad, training in SEEN if role == "student" and training]
    assert all(not grad and not training for role, _, grad, training in SEEN if role == "teacher")
    assert len(trained) == steps and len(taught) == steps + 1  # + the blank-image check
    assert taught[0].shape == (1, 1, 12, 12) and not taught[0].any()
    (mean_s,), (std_s,) = result.config.data.mean, result.config.data.std
    mixed = 0
    for student_x, teacher_x in zip(trained, taught[1:], strict=True):
        pixels = (student_x * std_s + mean_s) * 255
        if own_statistics:  # back to pixels: both saw the same augmented image
            torch.testing.assert_close((teacher_x * 0.2 + 0.3) * 255, pixels)
        else:
            assert torch.equal(student_x, teacher_x)
        mixed += int(((pixels - pixels.round()).abs() > 1e-2).any())  # MixUp: between levels
    assert mixed > 0  # the batches were really augmented (not the stored images)


def test_a_resumed_run_reloads_its_teacher_and_ends_exactly_as_an_uninterrupted_one(
    tmp_path, zoo_teacher, monkeypatch
):
    config = config_for(tmp_path / "whole", teacher=str(zoo_teacher), distill_alpha=0.7)
    fit(config, train_set=TRAIN, test_set=TEST)
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        stop_after_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            fit(config.replace(out_dir=str(run)), train_set=TRAIN, test_set=TEST)
    import cnnkit.train.loop as loop

    loads = []
    original = loop.load_teacher
    monkeypatch.setattr(loop, "load_teacher", lambda *a, **k: loads.append(a) or original(*a, **k))
    fit(resume=run, model=TINY, train_set=TRAIN, test_set=TEST)
    assert len(loads) == 1 and loads[0][0].checkpoint == str(zoo_teacher)
    (tested, states), (whole_tested, whole_states) = figures(run), figures(tmp_path / "whole")
    assert tested == whole_tested and same_states(states, whole_states)


def test_a_changed_teacher_file_refuses_the_resume_in_one_line(tmp_path, zoo_teacher, capsys):
    teacher = tmp_path / "teacher.pt"
    shutil.copy(zoo_teacher, teacher)
    config = config_for(tmp_path / "run", teacher=str(teacher), epochs=1)
    fit(config, train_set=TRAIN, test_set=TEST)
    saved = torch.load(teacher, weights_only=True)
    saved["model"] = {k: v + 1 for k, v in saved["model"].items()}
    torch.save(saved, teacher)
    more = {"epochs": 2}
    with pytest.raises(ConfigError, match="not the teacher the run in") as info:
        fit(
            config.replace(**more),
            resume=tmp_path / "run",
            train_set=TRAIN,
            test_set=TEST,
        )
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="keeps it"):
        fit(
            config.replace(teacher=None, **more),
            resume=tmp_path / "run",
            train_set=TRAIN,
            test_set=TEST,
        )
    plain = config_for(tmp_path / "plain", epochs=1)
    fit(plain, train_set=TRAIN, test_set=TEST)
    with pytest.raises(ConfigError, match="trained without a teacher"):
        fit(
            plain.replace(teacher=str(zoo_teacher), **more),
            resume=tmp_path / "plain",
            train_set=TRAIN,
            test_set=TEST,
        )


# -- errors: one line, nothing written -----------------------------------------------------------


def refused(tmp_path, error, match, **kwargs):
    out = tmp_path / "run"
    config = kwargs.pop("config", None) or config_for(out, **kwargs.pop("changes", {}))
    with pytest.raises(error) as info:
        fit(config, **{"train_set": TRAIN, "test_set": TEST, **kwargs})
    text = str(info.value)
    assert match in text and "\n" not in text, text
    assert not out.exists()
    return text


def test_a_teacher_for_other_classes_or_images_is_refused(tmp_path, zoo_teacher):
    three = quadrant_dataset(128, seed=3)
    three = (three.images, three.labels.clamp(max=2))  # a 3-class tensors dataset
    refused(
        tmp_path,
        ConfigError,
        "gives 4 logits per image, but tensors has 3 classes",
        changes={"teacher": str(zoo_teacher)},
        train_set=None,
        test_set=None,
        data=(three, three),
    )
    refused(
        tmp_path,
        ConfigError,
        "was trained on 1x12x12 images, bands has 1x16x16",
        changes={"teacher": str(zoo_teacher)},
        train_set=quadrant_dataset(128, 1, size=16),
        test_set=quadrant_dataset(32, 2, 16),
    )
    refused(
        tmp_path,
        ConfigError,
        "gives output (1, 10) for one image, but bands needs (1, 4)",
        teacher=tiny_cnn(num_classes=10),
    )
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(100, 4))
    with model_left_as_found(wrong):
        refused(
            tmp_path,
            ConfigError,
            "a forward pass on one 1x12x12 image of bands failed",
            teacher=wrong,
        )


def test_a_teacher_that_is_not_a_checkpoint_is_refused(tmp_path):
    refused(
        tmp_path, ConfigError, "fit: teacher must be a checkpoint path or an nn.Module", teacher=42
    )
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint")
    refused(tmp_path, CheckpointError, "--teacher: ", changes={"teacher": str(notes)})
    state = tmp_path / "state.pt"
    torch.save(tiny_cnn().state_dict(), state)
    refused(
        tmp_path,
        CheckpointError,
        "not a cnnkit training checkpoint",
        changes={"teacher": str(state)},
    )
    refused(  # a folder without best.pt
        tmp_path, CheckpointError, "no such checkpoint file", changes={"teacher": str(tmp_path)}
    )
    refused(
        tmp_path,
        ConfigError,
        "its weights come from a checkpoint: give --teacher CHECKPOINT",
        changes={"teacher_model": TINY},
    )


def test_a_teacher_checkpoint_never_selects_code(tmp_path):
    fit(config_for(tmp_path / "t", epochs=1), train_set=TRAIN, test_set=TEST)  # records TINY
    teacher = str(tmp_path / "t" / "best.pt")
    refused(tmp_path, CheckpointError, f"--teacher-model {TINY}", changes={"teacher": teacher})
    named = config_for(tmp_path / "run", teacher=teacher, teacher_model=TINY, epochs=1)
    assert fit(named, train_set=TRAIN, test_set=TEST).final["epochs"] == 1
    # nor may a --config file or a resumed checkpoint name the teacher's code
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"teacher_model": "os:system"}))
    code = main(["train", "--config", str(settings_file), "--out", str(tmp_path / "x")])
    assert code == 2 and not (tmp_path / "x").exists()
    user = config_for(tmp_path / "user", epochs=1)
    fit(user, train_set=TRAIN, test_set=TEST, teacher=tiny_cnn())
    with pytest.raises(CheckpointError, match=r"teacher=<the module>"):
        fit(resume=tmp_path / "user", model=TINY, train_set=TRAIN, test_set=TEST)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"distill_alpha": 1.5}, "--distill-alpha: must be in [0, 1], got 1.5"),
        ({"distill_alpha": -0.1}, "--distill-alpha: must be in [0, 1], got -0.1"),
        ({"distill_temperature": 0.0}, "--distill-temperature: must be in (0, inf], got 0.0"),
        ({"distill_temperature": -2.0}, "--distill-temperature: must be in (0, inf], got -2.0"),
    ],
)
def test_alpha_outside_0_1_and_a_temperature_not_above_0_are_refused(changes, match):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_flat(**changes)
    assert str(info.value) == match


def test_the_cli_refuses_bad_distillation_flags_in_one_line(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    from tests.e2e.test_train_cli import fashion_mnist_available

    cases = [["--distill-alpha", "2"], ["--distill-temperature", "0"]]
    if fashion_mnist_available():  # the teacher is checked against the data it would teach
        cases.append(["--teacher", str(notes)])
    for flags in cases:
        out = tmp_path / "run"
        argv = ["train", "--model", "softmax_regression", "--dataset", "fashion_mnist"]
        code = main([*argv, *flags, "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("cnnkit: error: ") and err.count("\n") == 1, err
        assert flags[0].split("-")[-1] in err or "--teacher" in err
        assert not out.exists()


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ("three", "the teacher gives 4 logits per image, but three has 3 classes"),
        ("large", "the teacher was trained on 1x12x12 images, bands has 1x16x16"),
    ],
)
def test_the_cli_refuses_a_teacher_for_other_data_in_one_line(
    tmp_path, capsys, monkeypatch, zoo_teacher, data, needle
):
    """cnnkit train --teacher with data of other classes or another image size: one line
    naming --teacher, exit 2, no run folder."""
    import cnnkit.data
    from cnnkit.data import ImageDataset

    if data == "three":
        bands = quadrant_dataset(96, seed=1)
        keep = bands.labels < 3
        split = ImageDataset(bands.images[keep], bands.labels[keep], ["a", "b", "c"], "three")
        sets = {"train": split, "test": split}
    else:
        sets = {"train": quadrant_dataset(96, 1, 16), "test": quadrant_dataset(32, 2, 16)}
    monkeypatch.setattr(cnnkit.data, "load_dataset", lambda name, split, data_dir=None: sets[split])
    out = tmp_path / "run"
    argv = ["train", "--model", TINY, "--teacher", str(zoo_teacher), "--val-size", "0"]
    assert main([*argv, "--device", "cpu", "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cnnkit: error: --teacher {zoo_teacher}: ") and err.count("\n") == 1
    assert needle in err and not out.exists()


# -- every recipe, a time budget ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["fast", "best", "seed003", "lenet5", "alexnet_small", "mlp"])
def test_every_recipe_distils(tmp_path, recipe):
    """Each recipe's own precision, memory format, augmentation, EMA/TTA and schedule, one
    epoch of 64 images, taught by a module of another kind (BatchNorm, adaptive pooling)."""
    from cnnkit.train import resolve_config

    size = 12 if recipe == "seed003" else 28  # ResNet-18's full-size maps take 20 s at 28x28
    overrides = {
        "epochs": 1,
        "val_size": 32,
        "mean": None,
        "std": None,
        "device": "cpu",
        "threads": 1,
        "progress": False,
        "tensorboard": False,
        "plots": False,
        "distill_alpha": 0.9,
        "out_dir": str(tmp_path / "run"),
    }
    config = resolve_config(recipe, overrides=overrides)
    result = fit(
        config,
        train_set=quadrant_dataset(96, 1, size),
        test_set=quadrant_dataset(32, 2, size),
        teacher=tiny_cnn(),
    )
    assert result.final["epochs"] == 1 and result.config.distillation.teacher_model is not None
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert len(saved["teacher_sha256"]) == 64
    assert torch.isfinite(torch.tensor(result.history[-1]["train_loss"]))


def test_a_time_budget_counts_the_teachers_time(tmp_path, zoo_teacher):
    config = config_for(tmp_path / "run", teacher=str(zoo_teacher), epochs=1000, time_budget=0.3)
    result = fit(config, train_set=TRAIN, test_set=TEST)
    assert result.final["stopped"] == "time_budget"
    assert result.history[-1]["elapsed_seconds"] >= 0.3


def test_the_teacher_runs_with_the_students_precision_and_memory_format():
    from cnnkit.train.datasets import RunData
    from cnnkit.train.distill import distillation_objective, load_teacher
    from cnnkit.train.distill_settings import DistillSettings

    data = RunData(TRAIN, None, TEST, mean=(0.4,), std=(0.3,))
    settings = DistillSettings(checkpoint=None, code="user:x", alpha=0.5, temperature=2.0)
    module = tiny_cnn()
    with model_left_as_found(module):
        teacher = load_teacher(
            settings, data, torch.device("cpu"), channels_last=True, module=module
        )
    conv = teacher.module[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    images = torch.randn(8, 1, 12, 12).contiguous(memory_format=torch.channels_last)
    assert teacher.logits(images, torch.bfloat16).dtype == torch.bfloat16  # autocast, as the
    assert teacher.logits(images, None).dtype == torch.float32  # student's forward runs
    objective = distillation_objective(torch.device("cpu"), torch.bfloat16, teacher, settings)
    student = tiny_cnn().to(memory_format=torch.channels_last)
    loss, logits = objective(student, images, torch.randint(0, 4, (8,)))
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert all(p.grad is None for p in teacher.module.parameters())
    assert all(p.grad is not None for p in student.parameters())
