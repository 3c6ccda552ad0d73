"""`cnnkit deploy fold|export|quantize|bench`: output checked against PyTorch and onnxruntime,
and one-line errors with exit 2."""

from __future__ import annotations

import json
import sys

import pytest

from cnnkit.cli.main import main
from cnnkit.train import TrainConfig, fit
from tests.train.tiny import quadrant_dataset

TINY = "tests.train.tiny:tiny_cnn"
# the run trained the user's own code: a checkpoint never selects it, the user names it again
CODE = ["--trust-code", TINY]


@pytest.mark.slow
def test_fold_reports_pairs_and_summary_figures(capsys):
    assert main(["deploy", "fold", TINY, "--input", "1,12,12", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["folded"] == [["0", "1"]] and report["max_error"] < 1e-5
    before, after = report["parameters"]
    assert before - after == 2 * 6  # the BN's weight and bias go; the conv keeps its bias


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy") / "run"
    train, test = quadrant_dataset(200, seed=1), quadrant_dataset(300, seed=2)
    config = TrainConfig.from_flat(
        model=TINY, val_size=40, batch_size=32, epochs=2, precision="off",
        channels_last=False, progress=False, tensorboard=False, plots=False, device="cpu",
        out_dir=str(out),
    )  # fmt: skip
    fit(config, train_set=train, test_set=test)
    return out, train, test


@pytest.fixture
def fake_data(tiny_run, monkeypatch):
    import cnnkit.data

    _, train, test = tiny_run
    sets = {"train": train, "test": test}
    monkeypatch.setattr(cnnkit.data, "load_dataset", lambda name, split, data_dir=None: sets[split])


@pytest.mark.slow
def test_export_of_a_checkpoint_keeps_its_test_top1(tiny_run, fake_data, tmp_path, capsys):
    target = tmp_path / "tiny.onnx"
    code = main(
        ["deploy", "export", str(tiny_run[0]), "--out", str(target), "--format", "json", *CODE]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["test_images"] == 300
    assert abs(report["onnx_top1"] - report["torch_top1"]) <= 0.05
    assert report["max_error"] < 1e-4 and report["test_max_error"] < 1e-4
    sidecar = json.loads(target.with_suffix(".json").read_text())
    assert sidecar["classes"] == tiny_run[1].classes and len(sidecar["mean"]) == 1


@pytest.mark.slow
def test_quantize_reports_int8_against_fp32(tiny_run, fake_data, tmp_path, capsys):
    import onnxruntime

    target = tmp_path / "int8.onnx"
    argv = ["deploy", "quantize", str(tiny_run[0]), "--out", str(target), "--calibration", "64"]
    argv += CODE
    assert main([*argv, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["calibration_images"] == 64 and report["test_images"] == 300
    assert report["int8_bytes"] == target.stat().st_size
    assert abs(report["fp32_top1"] - report["torch_top1"]) <= 0.5
    ops = {n.op_type for n in __import__("onnx").load(str(target)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])


def test_bench_json_names_the_fastest_and_the_load(capsys):
    argv = ["deploy", "bench", TINY, "--input", "1,12,12", "--batch-sizes", "1,4",
            "--threads", "1", "--variants", "eager,folded,channels_last", "--warmup", "1",
            "--repeats", "3", "--format", "json"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["measurements"]
    assert {(r["variant"], r["batch_size"]) for r in rows} == {
        (v, b) for v in ("eager", "folded", "channels_last") for b in (1, 4)
    }
    for row in rows:
        assert row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] and row["repeats"] == 3
        assert row["throughput"] == pytest.approx(row["batch_size"] / row["mean_ms"] * 1e3)
    for best in report["fastest"]:
        same = [r["p50_ms"] for r in rows if r["batch_size"] == best["batch_size"]]
        assert best["p50_ms"] == min(same)
    assert len(report["load_before"]) == 3 and report["machine"]["cores"] >= 1


def test_bench_table_and_plot_render(tmp_path, capsys):
    plot = tmp_path / "bench.png"
    argv = ["deploy", "bench", TINY, "--input", "1,12,12", "--batch-sizes", "2,3",
            "--threads", "1", "--variants", "eager,folded", "--warmup", "1", "--repeats", "2",
            "--plot", str(plot)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "p50 ms" in out and "fastest:" in out and "batch 2, 1 thread(s): " in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["deploy", "fold", "resnet18", "--input", "3,x"], "--input"),
        (["deploy", "fold", "resnet18", "--model-kwargs", "{bad"], "--model-kwargs"),
        (["deploy", "export", "nothing_here.pt", "--out", "x.onnx"], "checkpoint not found"),
        (["deploy", "bench", TINY, "--input", "1,12,12", "--variants", "eager,warp"], "warp"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path, capsys):
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"not a checkpoint")
    out = tmp_path / "x.onnx"
    assert main(["deploy", "export", str(bogus), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.pt" in err
    assert not out.exists()


def test_missing_onnx_extra_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import now raises ImportError
    out = tmp_path / "x.onnx"
    assert main(["deploy", "export", TINY, "--input", "1,12,12", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install cnnkit[onnx]" in err
    assert list(tmp_path.iterdir()) == []
