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
    assert config["teacher"] == str(tmp_path / "t.pt")


def test_the_gain_is_the_paired_difference_per_seed():
    plain, taught = [90.0, 91.0, 92.5], [90.5, 90.0, 93.5]
    gain = bench.paired_gain(plain, taught)
    assert gain["gain_mean"] == pytest.approx(statistics.fmean([0.5, -1.0, 1.0]))
    assert gain["gain_std"] == pytest.approx(statistics.stdev([0.5, -1.0, 1.0]))
    assert (gain["gain_min"], gain["gain_max"]) == (-1.0, 1.0)
    assert gain["taught_mean"] - gain["plain_mean"] == pytest.approx(gain["gain_mean"])
