"""`cnnkit eval` on a real run: --split val|test, --out files, JSON names and null, progress."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from cnnkit.cli.main import main
from tests.train.fashion_run import needs_fashion_mnist, trained_run

pytestmark = [needs_fashion_mnist, pytest.mark.slow]


def reject_constant(name: str):
    raise ValueError(f"not JSON: {name}")  # NaN, Infinity, -Infinity


def strict_json(text: str):
    return json.loads(text, parse_constant=reject_constant)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp())[0]


@pytest.fixture(scope="module")
def final(run_dir):
    return json.loads((run_dir / "final.json").read_text())


def evaluate_json(capsys, *argv: str) -> dict:
    assert main(["eval", *argv, "--format", "json"]) == 0
    return strict_json(capsys.readouterr().out)


def test_eval_json_uses_final_json_s_names_and_reproduces_its_figures(run_dir, final, capsys):
    report = evaluate_json(capsys, str(run_dir))
    for key in ("test_top1", "test_top5", "test_loss", "test_images", "tta"):
        assert report[key] == final[key], key
    for key in ("per_class_top1", "confusion", "classes", "dataset"):
        assert report[key] == final[key], key
    assert len(report["hardest"]) == len(final["hardest"]) == 16  # the run's --hardest
    assert report["hardest"] == final["hardest"]


def test_eval_split_val_rebuilds_the_run_s_validation_split(run_dir, final, capsys):
    """The run validated without TTA; best.pt holds the weights of its best validation."""
    report = evaluate_json(capsys, str(run_dir), "--split", "val", "--no-tta")
    assert report["split"] == "val" and report["val_images"] == final["val_images"] == 1000
    assert report["val_top1"] == final["best_val_top1"]
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert float(rows[-1]["val_loss"]) == pytest.approx(report["val_loss"], rel=1e-12)
    assert "test_top1" not in report


def test_eval_out_writes_the_confusion_png_per_class_csv_and_json(run_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", str(run_dir), "--split", "val", "--out", str(out), "--hardest", "2"]) == 0
    text = capsys.readouterr().out
    assert "precision" in text and "recall" in text and f"wrote {out / 'eval-val.json'}" in text
    assert sorted(p.name for p in out.iterdir()) == [
        "confusion-val.png",
        "eval-val.json",
        "per_class-val.csv",
    ]
    assert (out / "confusion-val.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    report = strict_json((out / "eval-val.json").read_text())
    rows = list(csv.DictReader((out / "per_class-val.csv").open()))
    assert [row["class"] for row in rows] == report["classes"]
    for row, entry, matrix_row in zip(rows, report["per_class"], report["confusion"], strict=True):
        assert int(row["support"]) == sum(matrix_row) == entry["support"]
        assert float(row["recall"]) == pytest.approx(report["per_class_top1"][row["class"]])
        for key in ("precision", "recall", "f1"):
            assert (row[key] == "") == (entry[key] is None)
            if row[key]:
                assert float(row[key]) == entry[key]


def test_eval_out_into_the_run_folder_keeps_the_run_s_own_files(run_dir, capsys):
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert main(["eval", str(run_dir), "--out", str(run_dir), "--split", "val"]) == 0
    capsys.readouterr()
    for name, data in before.items():
        assert (run_dir / name).read_bytes() == data, name
    for name in ("confusion-val.png", "eval-val.json", "per_class-val.csv"):
        (run_dir / name).unlink()


def test_eval_out_that_is_a_file_is_one_line(run_dir, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("keep")
    assert main(["eval", str(run_dir), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {target}: is a file" in err
    assert target.read_text() == "keep"


def test_eval_json_writes_null_where_a_figure_is_nan(run_dir, tmp_path, capsys):
    """A model whose weights hold NaN has NaN loss and precision: valid JSON says null."""
    saved = torch.load(run_dir / "best.pt", weights_only=True)
    name = next(k for k in saved["model"] if k.endswith("weight"))
    saved["model"][name] = torch.full_like(saved["model"][name], float("nan"))
    broken = tmp_path / "nan.pt"
    torch.save(saved, broken)
    assert main(["eval", str(broken), "--split", "val", "--format", "json", "--hardest", "0"]) == 0
    out = capsys.readouterr().out
    with pytest.raises(ValueError, match="not JSON: NaN"):
        strict_json(json.dumps(float("nan")))  # the strict parser does reject NaN
    report = strict_json(out)
    assert report["val_loss"] is None
    assert any(entry["precision"] is None for entry in report["per_class"])


def test_eval_split_val_of_a_run_without_validation_is_one_line(run_dir, tmp_path, capsys):
    saved = torch.load(run_dir / "best.pt", weights_only=True)
    saved["config"]["val_size"] = 0
    path = tmp_path / "noval.pt"
    torch.save(saved, path)
    assert main(["eval", str(path), "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"--split val: {path} was trained without a validation split" in err


def test_eval_shows_how_the_run_was_trained(run_dir, capsys):
    from cnnkit.train.provenance import read_environment

    assert main(["eval", str(run_dir), "--split", "val", "--hardest", "0"]) == 0
    out = capsys.readouterr().out
    assert f"trained with {read_environment(run_dir).line()}" in out.splitlines()


def test_eval_progress_bar_only_on_a_terminal_and_never_with_quiet(run_dir, capsys, monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    quick = ["eval", str(run_dir), "--split", "val", "--hardest", "0"]
    assert main(quick) == 0
    assert capsys.readouterr().err == ""  # stderr is not a terminal here
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: treat stderr as a terminal
    assert main(quick) == 0
    shown = capsys.readouterr()
    assert "evaluating" in shown.err and "1000/1000" in shown.err
    assert "evaluating" not in shown.out
    assert main([*quick, "--quiet"]) == 0
    assert capsys.readouterr().err == ""
