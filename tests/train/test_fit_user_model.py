"""fit(config, model=<your nn.Module>, data=<your tensors>): Lightning-style training of your own.

The oracle for "it trained your module" is the checkpoint itself: best.pt's weights, loaded
into a fresh copy of the module, give the test accuracy fit reported (re-measured here by hand
with plain PyTorch), and resuming with the module again ends exactly as an uninterrupted run.
"""

from __future__ import annotations

import json

import pytest
import torch

from cnnkit.errors import CheckpointError, ConfigError, DataError
from cnnkit.train import TrainConfig, evaluate, fit
from tests.model_guard import model_left_as_found
from tests.train.tiny import quadrant_dataset, quiet_config, stop_after_epoch, tiny_cnn

TRAIN = quadrant_dataset(256, seed=1)
TEST = quadrant_dataset(96, seed=2)
TENSORS = ((TRAIN.images, TRAIN.labels), (TEST.images, TEST.labels))


def config_for(tmp_path, **changes) -> TrainConfig:
    base = quiet_config(
        tmp_path / "run", val_size=64, batch_size=32, epochs=2, lr=0.05, deterministic=True
    )
    return base.replace(**changes)


def test_fit_trains_a_copy_of_the_users_module_on_the_users_tensors(tmp_path):
    torch.manual_seed(0)
    module = tiny_cnn()
    with model_left_as_found(module):
        result = fit(config_for(tmp_path), model=module, data=TENSORS)
    recorded = "user:torch.nn.modules.container.Sequential"
    assert result.config.model.model == recorded and result.final["model"] == recorded
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["model"] == recorded
    assert result.model is not module and type(result.model) is type(module)
    # independent re-measurement: best.pt's weights in a fresh module, plain PyTorch
    fresh = tiny_cnn()
    fresh.load_state_dict(torch.load(tmp_path / "run" / "best.pt", weights_only=True)["model"])
    mean, std = result.config.data.mean[0], result.config.data.std[0]
    with torch.no_grad():
        logits = fresh.eval()(TEST.images.float().div(255).sub(mean).div(std))
    correct = (logits.argmax(1) == TEST.labels).float().mean().item() * 100
    assert result.test_top1 == pytest.approx(correct, abs=1e-6)
    assert result.final["dataset"] == "tensors"


def test_a_users_module_resumes_only_when_given_again_and_exactly(tmp_path, monkeypatch):
    torch.manual_seed(0)
    module = tiny_cnn()
    whole = fit(config_for(tmp_path / "whole"), model=module, data=TENSORS)

    with monkeypatch.context() as patch:
        stop_after_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            fit(config_for(tmp_path), model=module, data=TENSORS)
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"own nn\.Module torch\.nn\.modules\.container"):
        fit(resume=run, data=TENSORS)
    with pytest.raises(ConfigError, match="a resumed run keeps its model"):
        fit(resume=run, model=torch.nn.Linear(1, 1), data=TENSORS)
    resumed = fit(resume=run, model=module, data=TENSORS)
    assert resumed.final["test_top1"] == whole.final["test_top1"]
    for name in ("best.pt", "last.pt"):
        a = torch.load(run / name, weights_only=True)["model"]
        b = torch.load(tmp_path / "whole" / "run" / name, weights_only=True)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a), name
    # evaluating the run also needs the module: the checkpoint never names code
    with pytest.raises(CheckpointError, match="give it again in Python"):
        evaluate(run, device="cpu")


@pytest.mark.parametrize(
    ("data", "error", "text"),
    [
        (TRAIN, ConfigError, "fit: data must be a (train, test) pair"),
        ((TENSORS[0],), ConfigError, "fit: data must be a (train, test) pair"),
        (((TRAIN.images.float(), TRAIN.labels), TENSORS[1]), DataError, "uint8 tensor"),
    ],
)
def test_bad_data_is_one_line(tmp_path, data, error, text):
    with pytest.raises(error) as info:
        fit(config_for(tmp_path), model=tiny_cnn(), data=data)
    assert text in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "run").exists()


def test_data_and_train_set_together_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        fit(config_for(tmp_path), data=TENSORS, train_set=TRAIN)
