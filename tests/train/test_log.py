"""The run log: metrics.csv rows, the epoch line, the progress bar with images/s."""

from __future__ import annotations

import csv
import io

from rich.console import Console

from cnnkit.train.log import COLUMNS, RunLog

ROW = {
    "epoch": 1,
    "steps": 10,
    "lr": 0.05,
    "train_loss": 0.5,
    "train_top1": 81.25,
    "val_loss": None,
    "val_top1": None,
    "val_top5": None,
    "images_per_second": 1234.5,
    "epoch_seconds": 2.0,
    "elapsed_seconds": 2.0,
}


def test_progress_bar_shows_images_per_second_and_the_epoch_line_stays(tmp_path):
    log = RunLog(tmp_path, epochs=3, progress=True, tensorboard=False)
    buffer = io.StringIO()
    log.console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    log.show_bar = True
    log.start_epoch(1, batches=10)
    for _ in range(10):
        log.advance(images_per_second=1234.5, loss=0.5)
    log._bar.refresh()
    log.end_epoch([ROW])
    log.close()
    text = buffer.getvalue()
    assert "1234 img/s" in text or "1235 img/s" in text
    assert "epoch 1/3  lr 0.05  train 0.500 81.25%  1234 img/s  2.0 s" in text


def test_metrics_csv_has_one_row_per_epoch_with_empty_unmeasured_cells(tmp_path):
    log = RunLog(tmp_path, epochs=2, progress=False, tensorboard=False)
    second = {**ROW, "epoch": 2, "val_loss": 0.4, "val_top1": 88.0, "val_top5": 99.0}
    log.end_epoch([ROW])
    log.end_epoch([ROW, second])
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert list(rows[0]) == list(COLUMNS)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert rows[0]["val_top1"] == "" and float(rows[1]["val_top1"]) == 88.0


def test_a_budgeted_epoch_line_shows_time_used_instead_of_the_epoch_bound():
    from cnnkit.train.log import format_epoch

    line = format_epoch({**ROW, "epoch": 3, "elapsed_seconds": 39.4}, epochs=1000, budget=42.0)
    assert line.startswith("epoch 3  lr") and line.endswith("2.0 s  (39/42 s)")
