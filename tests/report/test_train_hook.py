"""`cnnkit train` writes report.html into the run folder at the end; `--no-report` skips it."""

from __future__ import annotations

import pytest

from cnnkit.cli.main import main
from cnnkit.report.page import SECTIONS

pytestmark = pytest.mark.slow


def _train(folder_data, out, *extra):
    return main(
        [
            "train", "--recipe", "fast", "--dataset", f"folder:{folder_data}",
            "--model-kwargs", '{"widths": [8, 16, 16]}', "--epochs", "1", "--batch-size", "15",
            "--time-budget", "none", "--precision", "off", "--no-channels-last", "--no-tta",
            "--no-matmul-weight-grad", "--no-plots", "--no-tensorboard", "--no-progress",
            "--out", str(out), *extra,
        ]
    )  # fmt: skip


def test_train_writes_the_report_unless_told_not_to(folder_data, tmp_path, capsys):
    assert _train(folder_data, tmp_path / "with") == 0
    page = tmp_path / "with" / "report.html"
    assert capsys.readouterr().out.splitlines()[-1] == f"report: {page}"
    assert page.read_text(encoding="utf-8").count("<section") == len(SECTIONS) == 10
    assert _train(folder_data, tmp_path / "without", "--no-report") == 0
    assert "report:" not in capsys.readouterr().out
    assert not (tmp_path / "without" / "report.html").exists()
    assert (tmp_path / "without" / "final.json").is_file()
