"""`cnnkit robustness`: the table and the JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest

from cnnkit.cli.main import main
from tests.train.robust_run import needs_fashion


@needs_fashion
@pytest.mark.slow
def test_table_json_and_out_folder(robust_checkpoint, tmp_path, capsys):
    path = str(robust_checkpoint)
    argv = ["robustness", path, "--corruptions", "scale,jpeg", "--severities", "1,5"]
    argv += ["--limit", "100", "--baseline", path]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    table = capsys.readouterr().out
    assert "corruption" in table and "scale" in table and "mCE 100.0%" in table
    assert (tmp_path / "out" / "corruptions.png").is_file()
    saved = json.loads((tmp_path / "out" / "robustness.json").read_text())
    assert main([*argv, "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["top1"] == saved["top1"] and set(printed["top1"]) == {"scale", "jpeg"}
    assert printed["severities"] == [1, 5] and printed["severity_table_version"] == 2
    assert printed["mce"] == pytest.approx(100.0)
    # table v1 stays selectable: its parameters are recorded with the result
    assert main([*argv, "--format", "json", "--severity-table", "1"]) == 0
    v1 = json.loads(capsys.readouterr().out)
    assert v1["severity_table_version"] == 1 and v1["parameters"]["jpeg"] == [50, 30, 20, 12, 7]
    assert printed["parameters"]["jpeg"] != v1["parameters"]["jpeg"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--corruptions", "rotaton"], "unknown corruption 'rotaton'; did you mean: rotation"),
        (["--severities", "0-9"], "--severities: each must be between 1 and 5"),
        (["--severities", "a"], "--severities: expected a range"),
        (["--resolution", "2"], "--resolution: must be between 0 and 1 (exclusive), got 2.0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00 not a checkpoint")
    assert main(["robustness", str(bad), *argv, "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()  # refused: nothing made
    err = capsys.readouterr().err
    assert err.startswith("cnnkit: error: ") and err.count("\n") == 1
    assert (message or "bad.pt") in err


@needs_fashion
def test_weights_choose_the_model_or_its_ema_as_cnnkit_eval_does(robust_checkpoint, capsys):
    argv = ["robustness", str(robust_checkpoint), "--corruptions", "jpeg", "--limit", "20"]
    assert main([*argv, "--weights", "ema"]) == 2  # the run trained without --ema
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no 'ema' weights (run without --ema?)" in err
    assert main([*argv, "--weights", "model", "--severities", "1"]) == 0
