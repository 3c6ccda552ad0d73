"""``cnnkit summary``: formats, flags, zoo names and callables, one-line errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.cli.main import main
from tests.analysis.models import TinyResNet

SPEC = "tests.analysis.models:tiny_resnet"
TOKENS = "tests.analysis.models:image_and_tokens"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _flops(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(shape))
    return counter.get_total_flops()


def test_json_of_a_callable_matches_the_oracles(capsys):
    code, out, _ = _run(capsys, "summary", SPEC, "--input", "3,16,16", "--batch", "4",
                        "--format", "json")  # fmt: skip
    data = json.loads(out)
    model = TinyResNet()
    assert code == 0 and data["model"] == SPEC and data["input_shape"] == [4, 3, 16, 16]
    assert data["total"]["params"] == sum(p.numel() for p in model.parameters())
    assert 2 * data["total"]["macs"] == _flops(model.eval(), (4, 3, 16, 16))


def test_zoo_name_with_its_default_input(capsys):
    from cnnkit.models import create_model

    code, out, _ = _run(capsys, "summary", "lenet5", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["input_shape"] == [1, 1, 28, 28]
    assert data["total"]["params"] == 61_706  # seed 003's LeNet-5 (reference figures)
    model = create_model("lenet5").eval()
    assert 2 * data["total"]["macs"] == _flops(model, (1, 1, 28, 28))
    assert [row["rf"][0] for row in data["layers"] if row["type"] in ("Conv2d", "MaxPool2d")] == [
        5, 6, 14, 16
    ]  # fmt: skip


@pytest.mark.parametrize("fmt", ["table", "csv", "md"])
def test_text_formats_show_every_layer(capsys, fmt):
    code, out, _ = _run(capsys, "summary", SPEC, "--input", "3,16,16", "--format", fmt)
    assert code == 0
    for name in ("stem.0", "layer1.add", "layer2.downsample.0", "fc"):
        assert name in out


def test_depth_and_measure(capsys):
    code, out, _ = _run(capsys, "summary", SPEC, "--input", "3,16,16", "--depth", "1",
                        "--measure", "--format", "json")  # fmt: skip
    data = json.loads(out)
    assert code == 0
    assert [row["name"] for row in data["layers"]] == [
        "stem", "layer1", "layer2", "pool", "flatten", "fc"
    ]  # fmt: skip
    assert data["measured"]["saved_bytes"] > 0 and data["depth"] == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["summary", "lenet"], "unknown model 'lenet'; did you mean: lenet5"),
        (["summary", SPEC], "--input is required"),
        (["summary", SPEC, "--input", "3,a,16"], "--input: expected comma-separated integers"),
        (["summary", SPEC, "--input", "3,16,16", "--batch", "0"], "--batch must be >= 1"),
        (["summary", SPEC, "--input", "3,16,16", "--depth", "-1"], "--depth must be >= 0"),
        (["summary", SPEC, "--input", "1,16,16"], "stem.0 (Conv2d) cannot take the input"),
        (["summary", "lenet5", "--input", "1,8,8"], "is too small for features.3 (Conv2d)"),
        (["summary", "tests.analysis.models:not_a_module", "--input", "3,8,8"], "not an nn.Module"),
        (["summary", "no_such_package.models:net", "--input", "3,8,8"], "cannot import module"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("cnnkit: error: ") and message in err and err.count("\n") == 1


@pytest.mark.slow
def test_the_installed_command_exits_2_without_a_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "cnnkit", "summary", "lenet5", "--input", "1,4,4"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_model_kwargs_columns_and_output_file(tmp_path, capsys):
    from cnnkit.models import create_model

    out = tmp_path / "lenet.txt"
    argv = ["summary", "lenet5", "--model-kwargs", '{"num_classes": 3}', "--columns",
            "input,kernel,trainable,other_flops,memory", "--output", str(out)]  # fmt: skip
    assert main(argv) == 0 and capsys.readouterr().out == ""
    text = out.read_text()
    header = text.splitlines()[0].split()
    assert header == ["Layer", "Type", "Output", "Input", "Kernel", "Trainable", "Other",
                      "FLOPs", "Memory"]  # fmt: skip
    params = sum(p.numel() for p in create_model("lenet5", num_classes=3).parameters())
    assert f"Params: {params:,}" in text
    first = text.splitlines()[2].split()
    assert first[:5] == ["features.0", "Conv2d", "1x6x28x28", "1x1x28x28", "5x5"]


def test_names_are_never_cut_in_a_narrow_terminal(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "20")
    assert main(["summary", SPEC, "--input", "3,16,16"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in ("layer2.downsample.0", "layer2.downsample.1"):
        assert any(line.split()[:1] == [name] for line in lines), name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lenet5", "--batch", "10000000000", "--input", "1,100000,100000"], "int64"),
        (
            ["resnet18", "--batch", "100000", "--input", "3,1000,1000", "--measure"],
            "more than this machine",
        ),
        (["lenet5", "--columns", "params,bogus"], "unknown column 'bogus'"),
        (["lenet5", "--columns", "params", "--format", "json"], "--columns applies to"),
        (["lenet5", "--model-kwargs", "{bad"], "--model-kwargs: not valid JSON"),
        (["lenet5", "--model-kwargs", '{"bad": 1}'], "--model-kwargs: lenet5 does not accept"),
        (["lenet5", "--dtypes", "flaot32"], "--dtypes: 'flaot32' is not a torch dtype"),
        (["lenet5", "--dtypes", "__class__"], "--dtypes: '__class__' is not a torch dtype"),
        (["lenet5", "--dtypes", "float32,long"], "--dtypes gives 2 dtype(s) for 1 input(s)"),
        ([TOKENS, "--input", "3,8,8", "--input", "5,x"], "--input: expected comma-separated"),
        ([TOKENS, "--input", "3,8,8", "--input", "0"], "--input: every value must be positive"),
        ([TOKENS, "--input", "3,8,8"], "ImageAndTokens cannot take the input"),
        ([TOKENS, "--input", "3,8,8", "--input", "5", "--dtypes", "float32"], "1 dtype(s) for 2"),
    ],
)
def test_sizes_and_flags_are_refused_before_allocating(argv, message, capsys):
    assert main(["summary", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_several_inputs_and_their_dtypes(capsys):
    """``--input`` repeated and ``--dtypes``: the shapes, params and MACs of a real forward on
    inputs of those dtypes (token ids are long)."""
    from tests.analysis.models import ImageAndTokens

    argv = ["summary", TOKENS, "--input", "3,16,16", "--input", "5", "--dtypes", "float32,long",
            "--batch", "2", "--format", "json"]  # fmt: skip
    code, out, _ = _run(capsys, *argv)
    data = json.loads(out)
    model = ImageAndTokens().eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(2, 3, 16, 16), torch.randint(0, 100, (2, 5)))
    assert code == 0 and data["input_shapes"] == [[2, 3, 16, 16], [2, 5]]
    assert data["total"]["params"] == sum(p.numel() for p in model.parameters())
    assert 2 * data["total"]["macs"] == counter.get_total_flops()
    # without --dtypes the tokens would be floats, which an embedding refuses
    assert main([*argv[:6], "--batch", "2"]) == 2
    assert "embed (Embedding) cannot take the input" in capsys.readouterr().err


def test_the_documented_attention_with_three_inputs_matches_flop_counter(capsys):
    """docs/analysis.md's example: query, key and value as three --input."""
    kwargs = {"embed_dim": 16, "num_heads": 2, "batch_first": True}
    shapes = ["--input", "5,16", "--input", "7,16", "--input", "7,16"]
    argv = ["summary", "torch.nn:MultiheadAttention", "--model-kwargs", json.dumps(kwargs),
            "--format", "json", *shapes]  # fmt: skip
    code, out, _ = _run(capsys, *argv)
    data = json.loads(out)
    model = torch.nn.MultiheadAttention(**kwargs).eval()
    q, kv = torch.randn(1, 5, 16), torch.randn(1, 7, 16)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(q, kv, kv)
    assert code == 0 and data["input_shapes"] == [[1, 5, 16], [1, 7, 16], [1, 7, 16]]
    assert 2 * data["total"]["macs"] == counter.get_total_flops()
