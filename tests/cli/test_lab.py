"""`cnnkit lab ...`: every experiment runs from the CLI, as text and JSON; bad input is one line."""

from __future__ import annotations

import json

import pytest
import torch

from cnnkit.cli.main import main


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _json(capsys, *argv: str) -> dict:
    assert main(["lab", *argv, "--format", "json", "--threads", "1"]) == 0
    return json.loads(capsys.readouterr().out)


def test_edges_json_holds_the_seed_outputs(capsys):
    data = _json(capsys, "edges")
    assert [e["seed"] for e in data["examples"]] == ["003", "004"]
    assert data["examples"][1]["output"][0] == [0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]


def test_learn_kernel_options_reach_the_function(capsys):
    data = _json(capsys, "learn-kernel", "--iterations", "4", "--learning-rate", "0.01",
                 "--seed", "3")  # fmt: skip
    assert (data["iterations"], data["learning_rate"], data["seed"]) == (4, 0.01, 3)
    assert len(data["losses"]) == 4


def test_equivariance_shifts_and_text(capsys):
    data = _json(capsys, "equivariance", "--size", "8", "--shift", "1,0", "--shift", "0,2")
    assert {tuple(row["shift"]) for row in data["rows"]} == {(1, 0), (0, 2)}
    assert main(["lab", "equivariance", "--size", "8", "--shift", "2,2"]) == 0
    assert "conv 3x3, circular padding" in capsys.readouterr().out


def test_checkerboard_text_shows_the_pattern(capsys):
    assert main(["lab", "checkerboard", "--kernel-size", "3", "--stride", "2"]) == 0
    out = capsys.readouterr().out
    assert "coverage (measured): 1 1 2 1 2" in out and "transposed conv k=3 s=2" in out


def test_gradient_flow_writes_the_png(capsys, tmp_path):
    png = tmp_path / "grad.png"
    data = _json(capsys, "gradient-flow", "--blocks", "4", "--experiment", "linear",
                 "--out", str(png))  # fmt: skip
    assert data["image"] == str(png) and png.stat().st_size > 0
    assert [c["experiment"] for c in data["curves"]] == ["linear", "linear"]


def test_conv_algorithms_with_a_shape_and_methods(capsys):
    data = _json(capsys, "conv-algorithms", "--shape", "1,2,6,6,3,3,1,1", "--method", "torch",
                 "--method", "im2col", "--repeats", "1")  # fmt: skip
    assert [m["method"] for m in data["measurements"]] == ["torch", "im2col"]
    assert data["figures"][0]["shape"]["label"] == "2x6x6->3 k3 s1 p1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["conv-algorithms", "--shape", "1,2,3"], "--shape: expected 6, 7 or 8 integers"),
        (["conv-algorithms", "--shape", "1,2,6,6,3,0"], "--shape: sizes, channels, kernel"),
        (["equivariance", "--shift", "1,x"], "--shift: expected comma-separated integers"),
        (["equivariance", "--size", "7"], "size must be an even integer >= 4, got 7"),
        (["checkerboard", "--stride", "0"], "stride must be a positive integer, got 0"),
        (["learn-kernel", "--threads", "0"], "--threads must be >= 1, got 0"),
        (["conv-algorithms", "--shape", "1,2,2,2,3,5", "--method", "im2col"],
         "shape 2x2x2->3 k5 s1 p0: output size would be -2 on axis H"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(["lab", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnkit: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_lab_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["lab", "nope"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_gradient_flow_out_on_a_folder_is_one_line_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "f").write_text("keep")
    for out, message in (
        (tmp_path, f"--out {tmp_path}: is a folder; give a file name"),
        (tmp_path / "f" / "x.png", f"{tmp_path / 'f'} is a file, not a folder"),
    ):
        assert main(["lab", "gradient-flow", "--blocks", "2", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("cnnkit: error: ") and message in err and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["f"] and (tmp_path / "f").read_text() == "keep"
