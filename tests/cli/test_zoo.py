"""``cnnkit zoo``: formats, the RF column, the weights check, errors (the rows themselves are
tested in tests/analysis/test_model_table.py)."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch

from cnnkit.analysis.model_table import zoo_table
from cnnkit.cli.main import main
from cnnkit.models import create_model


def _params(name: str, **options: int) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name, **options).parameters())


def test_formats(capsys):
    assert main(["zoo", "squeezenet1_0", "--format", "json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["params"] == _params("squeezenet1_0")
    assert "SqueezeNet1_0_Weights" in record["source"]
    assert main(["zoo", "lenet5", "--format", "csv"]) == 0
    (record,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert record["name"] == "lenet5" and record["rf"] == "16x16"
    assert main(["zoo", "lenet5", "--format", "md"]) == 0
    assert "| lenet5 | lenet | 1x28x28 | 61,706 |" in capsys.readouterr().out
    assert main(["zoo", "lenet5"]) == 0
    assert "61,706" in capsys.readouterr().out


def test_rf_column_shows_the_local_field_and_marks_a_global_one(capsys):
    assert main(["zoo", "efficientnet_b0", "--format", "md"]) == 0
    (se,) = zoo_table(pattern="efficientnet_b0")
    assert f"| {se.local_rf[0]} (global) | 77.7 |" in capsys.readouterr().out
    assert main(["zoo", "resnet18", "--format", "md"]) == 0
    assert "| 435 | 69.8 |" in capsys.readouterr().out  # not global: the field alone
    assert main(["zoo", "alexnet_small", "--format", "csv"]) == 0
    (record,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert record["rf"] == "?x?" and record["rf_layer"] == "classifier.0"  # 7 -> 4: no field


def test_weights_check(tmp_path, capsys):
    path = tmp_path / "lenet.pt"
    torch.save({"model": create_model("lenet5").state_dict()}, path)
    assert main(["zoo", "lenet5", "--weights", str(path)]) == 0
    assert (
        capsys.readouterr().out == f"{path} fits lenet5: 10 tensors, 61,706 parameters (strict)\n"
    )
    assert main(["zoo", "lenet5", "--weights", str(path), "--num-classes", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'classifier.5.weight'" in err and "(10, 84)" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["zoo", "--family", "resnett"], "unknown model family 'resnett'; did you mean: resnet"),
        (["zoo", "--input", "3,224"], "--input: expected 3 integers"),
        (["zoo", "nothing*"], "no model matches pattern 'nothing*'"),
        (["zoo", "resnet*", "--weights", "x.pth"], "--weights needs one model name"),
        (["zoo", "lenet5", "--num-classes", "0"], "--num-classes must be >= 1"),
        (["zoo", "vgg16", "--input", "3,8,8"], "too small for features."),
        (["zoo", "lenet5", "--model-kwargs", '{"bad": 1}'], "--model-kwargs"),
        (["zoo", "lenet5", "--model-kwargs", "[1]"], "--model-kwargs must be a JSON object"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_csv_flags_are_words_never_joined_like_sizes(capsys):
    assert main(["zoo", "efficientnet_b0", "--format", "csv"]) == 0
    (record,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert record["rf_global"] == "true" and record["local_rf_global"] == "false"
    assert "truex" not in record["rf_global"] + record["local_rf_global"]


def test_model_kwargs_and_output_file(tmp_path, capsys):
    out = tmp_path / "zoo.json"
    argv = ["zoo", "lenet5", "--model-kwargs", '{"num_classes": 3}', "--format", "json"]
    assert main([*argv, "--output", str(out)]) == 0
    assert capsys.readouterr().out == ""
    (record,) = json.loads(out.read_text())
    assert record["params"] == _params("lenet5", num_classes=3) and record["top1"] is None
