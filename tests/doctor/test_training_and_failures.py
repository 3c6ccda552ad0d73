"""The doctor before training (static + config rules on a config's model) and failures: a
call that raises leaves the model as found and says why in one line."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from cnnkit.doctor import examine
from cnnkit.doctor.training import examine_config, print_before_training
from cnnkit.errors import TrainingError
from cnnkit.train.config import TrainConfig
from tests.model_guard import model_left_as_found


def test_examine_config_runs_static_and_config_rules_only() -> None:
    config = TrainConfig.from_flat(model="resnet18", batch_size=4, flip=False)
    report = examine_config(config, (1, 28, 28), 10)
    assert report is not None
    assert {"early-downsampling", "bn-small-batch", "no-augmentation"} <= set(report.rules_fired())
    assert "dead-relu" not in report.checked and "class-imbalance" not in report.checked
    assert "bn-small-batch" in report.checked and "conv-bias-before-bn" in report.checked


def test_print_before_training_prints_warnings_and_errors_only() -> None:
    out = io.StringIO()
    config = TrainConfig.from_flat(
        model="simple_cnn", flip=False
    )  # an info (conv bias) and a warning
    report = print_before_training(config, out, (3, 32, 32), 10)
    assert report is not None and report.count("info") >= 1
    lines = out.getvalue().splitlines()
    assert lines == [line for line in lines if line.startswith("cnnkit doctor: warning: ")]
    assert any("no-augmentation at flip" in line for line in lines)
    quiet = io.StringIO()
    print_before_training(TrainConfig.from_flat(model="simple_cnn"), quiet, (3, 32, 32), 10)
    assert quiet.getvalue() == ""


class FailsForReal(nn.Module):
    """Runs on the meta device (the capture) but not on real tensors (the probe)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "meta":
            raise RuntimeError("boom\nsecond line")
        return self.conv(x)


def test_a_failing_probe_is_one_line_and_leaves_the_model() -> None:
    model = FailsForReal()
    with model_left_as_found(model), pytest.raises(TrainingError, match=r"probe: .*\(boom\)$"):
        examine(model, (3, 8, 8), probe_steps=2)


class Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x).view(-1, 5, 7)  # 2*3*8*8 = 384 is not a multiple of 35


def test_a_model_that_cannot_run_raises_and_is_left_as_found() -> None:
    from cnnkit.errors import ShapeError

    model = Raises()
    model.train()
    with model_left_as_found(model), pytest.raises(ShapeError, match="cannot take the input"):
        examine(model, (3, 8, 8))
    assert model.training and model.bn.training


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"probe_steps": -1}, "probe_steps must be an integer >= 0"),
        ({"object_size": 0}, "object_size must be >= 1"),
        ({"input_shape": "abc"}, "input shape must be integers"),
        ({"input_shape": (3, 0, 8)}, "input.* must hold positive integers"),
    ],
)
def test_bad_arguments_are_config_errors(options, message) -> None:
    from cnnkit.errors import ConfigError

    model = nn.Conv2d(3, 8, 3)
    shape = options.pop("input_shape", (3, 8, 8))
    with model_left_as_found(model), pytest.raises(ConfigError, match=message):
        examine(model, shape, **options)
