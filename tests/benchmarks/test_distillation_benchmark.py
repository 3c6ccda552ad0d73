"""benchmarks/distillation.py: its commands are valid ``cnnkit train`` lines, its gain is paired."""

from __future__ import annotations

import json
import statistics

import pytest

from cnnkit.cli.main import main
from tests.benchmarks.conftest import load_script

bench = load_script("distillation")


def all_arguments() -> list[list[str]]:
    found = []
    for full, quick in [*bench.TEACHERS.values(), *bench.STUDENTS.values()]:
        found += [full] + ([quick] if quick is not None else [])
    return found


@pytest.mark.parametrize("arguments", all_arguments(), ids=" ".join)
def test_every_configured_run_is_a_valid_train_command(arguments, tmp_path, capsys):
    teacher = ["--teacher", str(tmp_path / "t.pt"), "--distill-alpha", "0.5"]
    argv = ["train", *arguments, *bench.COMMON, *teacher, "--out", str(tmp_path), "--dry-run"]
    assert main(argv) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["distillation"]["teacher"] == str(tmp_path / "t.pt")


def test_the_gain_is_the_paired_difference_per_seed():
    plain, taught = [90.0, 91.0, 92.5], [90.5, 90.0, 93.5]
    gain = bench.paired_gain(plain, taught)
    assert gain["gain_mean"] == pytest.approx(statistics.fmean([0.5, -1.0, 1.0]))
    assert gain["gain_std"] == pytest.approx(statistics.stdev([0.5, -1.0, 1.0]))
    assert (gain["gain_min"], gain["gain_max"]) == (-1.0, 1.0)
    assert gain["taught_mean"] - gain["plain_mean"] == pytest.approx(gain["gain_mean"])


def test_the_table_and_the_plot_show_every_student_and_teacher(tmp_path):
    from PIL import Image

    runs = [
        {
            "student": s,
            "teacher": t,
            "seed": seed,
            "test_top1": 90 + seed + (t is not None),
            "images_per_second": 1000.0 if t is None else 700.0,
            "epochs": 2,
        }
        for s in ("lenet5", "fast")
        for t in (None, "best")
        for seed in range(3)
    ]
    summary = []
    for student in ("lenet5", "fast"):
        plain = [r["test_top1"] for r in runs if r["student"] == student and r["teacher"] is None]
        taught = [r["test_top1"] for r in runs if r["student"] == student and r["teacher"]]
        summary.append(
            {
                "student": student,
                "teacher": "best",
                **bench.paired_gain(plain, taught),
                "plain_images_per_second": 1000.0,
                "taught_images_per_second": 700.0,
            }
        )
    result = {"teachers": [{"label": "best", "test_top1": 93.0}], "runs": runs, "summary": summary}
    text = bench.table(result)
    assert "| lenet5 | best (93.00%) | 91.00% | 92.00% | +1.00 ± 0.00 (+1.00 to +1.00) |" in text
    bench.plot(result, tmp_path / "plot.png")
    with Image.open(tmp_path / "plot.png") as image:
        assert image.size[0] > image.size[1] > 100
