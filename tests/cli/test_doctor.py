"""``cnnkit doctor``: formats, exit codes by --fail-on, checkpoints, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from cnnkit.cli.main import main
from cnnkit.doctor import CHECKS


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["doctor", *argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


SMALL = ("resnet18", "--input", "1,28,28", "--model-kwargs", '{"in_channels": 1}')


def test_table_and_exit_codes(capsys) -> None:
    code, out, _ = run(capsys, *SMALL)
    assert code == 0  # warnings only, --fail-on error by default
    assert "warning early-downsampling  maxpool" in out
    assert out.strip().endswith("rules checked")
    code, _, _ = run(capsys, *SMALL, "--fail-on", "warning")
    assert code == 1
    kwargs = '{"in_channels": 1, "small_input": true}'
    code, out, _ = run(capsys, "resnet18", "--input", "1,28,28", "--model-kwargs", kwargs,
                       "--fail-on", "warning")  # fmt: skip
    assert code == 0 and "0 errors, 0 warnings, 0 infos" in out


def test_json_is_findings_and_checked(capsys) -> None:
    code, out, _ = run(capsys, *SMALL, "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert {"findings", "checked"} <= set(data)
    assert set(data["checked"]) <= set(CHECKS.names())
    assert "conv-bias-before-bn" in data["checked"] and "dead-relu" not in data["checked"]
    keys = {"rule", "severity", "where", "message", "fix", "source"}
    assert all(set(f) == keys for f in data["findings"])


def test_sarif_2_1_0_structure(capsys) -> None:
    code, out, _ = run(capsys, *SMALL, "--format", "sarif")
    sarif = json.loads(out)
    assert code == 0
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    (the_run,) = sarif["runs"]
    rules = the_run["tool"]["driver"]["rules"]
    assert the_run["tool"]["driver"]["name"] == "cnnkit doctor"
    assert the_run["results"]
    for result in the_run["results"]:
        assert result["level"] in ("error", "warning", "note")
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"]
        logical = result["locations"][0]["logicalLocations"][0]
        assert logical["fullyQualifiedName"]
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith("file://") and uri.endswith("resnet.py")


def test_user_callable_needs_input(capsys) -> None:
    code, _, err = run(capsys, "tests.doctor.defects:small_rf")
    assert code == 2 and err.startswith("cnnkit: error: --input is required")
    code, out, _ = run(capsys, "tests.doctor.defects:small_rf", "--input", "3,32,32",
                       "--fail-on", "warning")  # fmt: skip
    assert code == 1 and "rf-smaller-than-input" in out
    code, out, _ = run(capsys, "tests.doctor.defects:small_rf", "--input", "3,32,32",
                       "--object-size", "5", "--fail-on", "warning")  # fmt: skip
    assert code == 0


def test_broken_model_fails_ci(capsys) -> None:
    code, out, _ = run(capsys, "tests.doctor.defects:unpadded_big_kernel", "--input", "3,8,8")
    assert code == 1 and out.startswith("cnnkit doctor") and "error   kernel-exceeds-input" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("resnet18", "--model-kwargs", "{bad"), "--model-kwargs: not valid JSON"),
        (("resnet18", "--model-kwargs", "[1]"), "--model-kwargs must be a JSON object"),
        (("resnet18", "--probe-steps", "-1"), "--probe-steps: must be >= 0"),
        (("resnet18", "--input", "3,0,4"), "--input: every value must be positive"),
        (("no_such_model",), "unknown model 'no_such_model'"),
        (("missing.pt",), "checkpoint not found"),
    ],
)
def test_bad_input_is_one_line(capsys, argv, message) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("cnnkit: error: ") and message in err and err.count("\n") == 1


def test_checkpoint_is_examined_with_its_shape(capsys, tmp_path: Path) -> None:
    from cnnkit.models import create_model
    from cnnkit.train.checkpoint import save_checkpoint
    from cnnkit.train.config import TrainConfig

    kwargs = {"in_channels": 1, "num_classes": 10, "small_input": True}
    model = create_model("resnet18", **kwargs)
    path = tmp_path / "best.pt"
    save_checkpoint(
        path,
        {"model": model.state_dict(), "model_name": "resnet18", "model_kwargs": kwargs,
         "config": TrainConfig.from_flat(model="resnet18").to_dict(), "epoch": 1, "mean": [0.286],
         "std": [0.353], "image_shape": [1, 28, 28], "classes": [str(i) for i in range(10)]},
    )  # fmt: skip
    code, out, _ = run(capsys, str(path), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["input_shape"] == [1, 28, 28] and data["findings"] == []


def test_probe_steps_run_the_probe_rules(capsys) -> None:
    code, out, _ = run(capsys, "lenet5", "--probe-steps", "3", "--format", "json")
    data = json.loads(out)
    assert code == 0 and "dead-relu" in data["checked"] and "nan-or-inf" in data["checked"]


def test_recipe_runs_config_rules(capsys) -> None:
    torch.manual_seed(0)
    code, out, _ = run(capsys, "airnet", "--recipe", "fast", "--format", "json")
    data = json.loads(out)
    assert code == 0 and "no-augmentation" in data["checked"]
    assert data["findings"] == []  # the recipe's model_kwargs: 16 whitening channels


def test_train_runs_the_doctor_first_unless_told_not_to(capsys, monkeypatch) -> None:
    import cnnkit.data
    import cnnkit.train.loop
    from cnnkit.data import ImageDataset

    tiny = ImageDataset(
        torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.tensor([0, 1]), ["a", "b"], "tiny"
    )
    monkeypatch.setattr(cnnkit.data, "load_dataset", lambda *args, **kwargs: tiny)
    calls = []

    def fake_fit(config, resume=None, before_training=None):  # the run is set up: 2 classes
        calls.append(1)
        if before_training is not None:
            before_training(config, (3, 32, 32), 2)
        return SimpleNamespace(out_dir=None)  # fit's RunResult, as far as the CLI reads it

    monkeypatch.setattr(cnnkit.train.loop, "fit", fake_fit)
    argv = ["train", "--model", "simple_cnn", "--no-flip", "--batch-size", "4", "--no-report"]
    assert main(argv) == 0 and calls == [1]
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith("cnnkit doctor: warning: no-augmentation at flip") for line in err)
    assert any("bn-small-batch" in line for line in err)
    assert not any("conv-bias-before-bn" in line for line in err)  # infos stay quiet
    assert main([*argv, "--no-doctor"]) == 0 and calls == [1, 1]
    assert capsys.readouterr().err == ""


def test_settings_whose_channels_do_not_divide_by_groups(capsys) -> None:
    spec = "tests.doctor.defects:grouped"
    code, out, _ = run(capsys, spec, "--input", "8,8,8", "--model-kwargs", '{"groups": 3}')
    assert code == 1
    assert "error   grouped-divisibility  model_kwargs" in out and "divisible by groups" in out
    code, out, _ = run(capsys, spec, "--input", "8,8,8", "--model-kwargs", '{"groups": 2}')
    assert code == 0 and "0 errors" in out and "grouped-divisibility" not in out


def test_dataset_and_checkpoint_statistics(capsys, monkeypatch, tmp_path: Path) -> None:
    import cnnkit.data
    from cnnkit.data import ImageDataset
    from cnnkit.models import create_model
    from cnnkit.train.checkpoint import save_checkpoint
    from cnnkit.train.config import TrainConfig

    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 28, 28), generator=generator, dtype=torch.uint8)
    labels = torch.tensor([0] * 30 + [1] * 10)
    toy = ImageDataset(images, labels, ["a", "b"], "toy")
    splits = {"train": toy, "test": toy.subset(range(5))}
    monkeypatch.setattr(cnnkit.data, "load_dataset", lambda name, split, **kw: splits[split])
    kwargs = {"in_channels": 1, "num_classes": 2, "small_input": True}
    path = tmp_path / "last.pt"
    save_checkpoint(
        path,
        {"model": create_model("resnet18", **kwargs).state_dict(), "model_name": "resnet18",
         "model_kwargs": kwargs, "config": TrainConfig.from_flat(model="resnet18").to_dict(),
         "epoch": 1,
         "mean": [0.1], "std": [0.3], "image_shape": [1, 28, 28], "classes": ["a", "b"]},
    )  # fmt: skip
    code, out, _ = run(capsys, str(tmp_path), "--dataset", "toy", "--format", "json")
    data = json.loads(out)
    assert code == 0
    found = {(f["rule"], f["where"], f["severity"]) for f in data["findings"]}
    assert ("normalisation-mismatch", "mean", "warning") in found
    assert ("class-imbalance", "toy", "warning") in found
    assert ("train-test-overlap", "toy", "warning") in found  # the test split is a subset
