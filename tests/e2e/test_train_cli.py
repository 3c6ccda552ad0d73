"""End to end: `python -m cnnkit train/eval/demo` on real Fashion-MNIST.

Checks the run-folder contract of docs/architecture.md, that the printed accuracy is the one in
final.json, that `cnnkit eval` re-measures the same figure from best.pt, that an existing run is
never overwritten, and that the main job (`cnnkit demo`) runs through. Exact resume is checked
in tests/train/test_fit.py (and `--resume` on the command line by docs/training.md's example).
Skipped when Fashion-MNIST is not available locally.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def fashion_mnist_available() -> bool:
    try:
        from cnnkit.data import load_dataset

        load_dataset("fashion_mnist", "test", download=False)
    except Exception:
        return False
    return True


def cnnkit(*argv: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "cnnkit", *argv], capture_output=True, text=True, cwd=cwd, env=env
    )


@pytest.mark.skipif(not fashion_mnist_available(), reason="Fashion-MNIST files not found")
def test_train_then_eval_on_real_fashion_mnist(tmp_path):
    common = ("--train-subset", "2000", "--no-tensorboard", "--no-plots", "--no-report")
    proc = cnnkit(
        "train", "--recipe", "fast", "--time-budget", "none", "--epochs", "2",
        "--val-size", "1000", "--eval-weights", "best", "--out", "run", *common, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    final = json.loads((run / "final.json").read_text())
    for key in ("test_top1", "test_top5", "test_loss", "epochs", "wall_seconds"):
        assert key in final, key
    assert final["images_per_second"] > 0 and final["test_images"] == 10000
    # 2,000 images, 2 epochs: far from converged, far above chance (10%)
    assert 50.0 < final["test_top1"] <= final["test_top5"] <= 100.0
    assert f"top-1 {final['test_top1']:.2f}%" in proc.stdout
    assert str(run) in proc.stdout or "run" in proc.stdout.splitlines()[-1]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for name in ("config.json", "last.pt", "best.pt"):
        assert (run / name).is_file(), name

    evaluated = cnnkit("eval", "run/best.pt", "--format", "json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["test_top1"] == pytest.approx(final["test_top1"], abs=1e-9)
    assert report["test_images"] == 10000 and report["tta"] == 1
    shifted = cnnkit("eval", "run/best.pt", "--tta", "2", "--format", "json", cwd=tmp_path)
    assert shifted.returncode == 0, shifted.stderr
    assert json.loads(shifted.stdout)["tta"] == 2
    older = cnnkit("eval", "run/best.pt", "--tta-shift", "1", "--format", "json", cwd=tmp_path)
    assert json.loads(older.stdout) == json.loads(shifted.stdout)  # the older flag: level 2
    too_far = cnnkit("eval", "run/best.pt", "--tta", "29", cwd=tmp_path)
    assert too_far.returncode == 2 and too_far.stderr.count("\n") == 1
    assert "--tta: a shift must be between 1 and 27 pixels for 28x28 images" in too_far.stderr

    again = cnnkit("train", "--recipe", "fast", "--out", "run", *common, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "already holds a run" in again.stderr


@pytest.mark.skipif(not fashion_mnist_available(), reason="Fashion-MNIST files not found")
def test_demo_prepares_data_trains_and_says_where_the_files_are(tmp_path):
    proc = cnnkit("demo", "--time-budget", "2", "--out", "demo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    final = json.loads((tmp_path / "demo" / "final.json").read_text())
    assert final["stopped"] == "time_budget" and final["dataset"] == "fashion_mnist"
    assert final["train_images"] == 60000 and final["test_images"] == 10000
    out = proc.stdout
    assert "parameters" in out and "MACs" in out  # the model introduction
    assert f"done: test accuracy {final['test_top1']:.2f}%" in out
    assert "files in demo/" in out and "cnnkit eval demo/best.pt" in out
    assert (tmp_path / "demo" / "confusion.png").is_file()
    again = cnnkit("demo", "--time-budget", "2", "--out", "demo", cwd=tmp_path)
    assert again.returncode == 2 and "already holds a run" in again.stderr
