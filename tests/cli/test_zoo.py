"""``cnnkit zoo``: the model table against its oracles, formats, the weights check, errors."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.cli.main import main
from cnnkit.cli.zoo import zoo_table
from cnnkit.models import create_model, list_models, model_info


def _oracle(name: str, shape: tuple[int, ...]) -> tuple[int, int]:
    """Parameters counted from the module and torch.utils.flop_counter's FLOPs / 2."""
    with torch.device("meta"):
        model = create_model(name).eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, *shape, device="meta"))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


@pytest.mark.slow
def test_every_registered_model_has_a_row_that_matches_the_oracles():
    """The analyzer summarises every zoo model (what `cnnkit summary NAME` runs)."""
    rows = zoo_table()
    assert sorted(row.name for row in rows) == list_models()
    for row in rows:
        info = model_info(row.name)
        assert row.input_shape == info.default_input
        assert (row.params, row.macs) == _oracle(row.name, row.input_shape), row.name
        published = info.published
        assert row.top1 == (published.top1 if published else None)
        assert row.source == (published.source if published else None)


def test_lenet_receptive_field_is_003s():
    # seed 003: LeNet-5's receptive field after pool2 is 16 (5, 6, 14, 16 layer by layer)
    (row,) = zoo_table(pattern="lenet5")
    assert row.rf == (16, 16) and row.rf_layer == "features.5" and not row.rf_global


def test_rows_are_in_natural_order_and_filtered():
    names = [row.name for row in zoo_table(family="resnet", pattern="resnet*")]
    assert names == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]


def test_rebuilt_models_carry_no_published_accuracy():
    (row,) = zoo_table(pattern="resnet18", input_shape=(1, 28, 28), num_classes=10)
    assert row.params == _params("resnet18", in_channels=1, num_classes=10)
    assert row.top1 is None and row.input_shape == (1, 28, 28)


def _params(name: str, **options: int) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name, **options).parameters())


def test_an_input_too_small_is_a_note_naming_the_layer():
    (row,) = zoo_table(pattern="lenet5", input_shape=(1, 8, 8))
    assert row.macs is None and row.rf is None
    assert "features.3 (Conv2d)" in row.note


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
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
