"""benchmarks/fashion_table.py: the budgeted ResNet-18 row's pace counts complete epochs only, and
the recipes table names each row with its budget."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st


def write_metrics(folder: Path, steps_per_epoch: int, seconds: list[float], cut: int) -> None:
    with (folder / "metrics.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "steps", "epoch_seconds"])
        for epoch, s in enumerate(seconds, 1):
            writer.writerow([epoch, epoch * steps_per_epoch, s])
        if cut:  # the budget stopped the last epoch after `cut` steps
            writer.writerow([len(seconds) + 1, len(seconds) * steps_per_epoch + cut, 1.0])


@given(
    seconds=st.lists(st.floats(10, 1000), min_size=1, max_size=6),
    steps=st.integers(2, 500),
    cut_fraction=st.floats(0, 0.99),
)
def test_pace_is_the_mean_of_complete_epochs(
    fashion_table, tmp_path_factory, seconds, steps, cut_fraction
):
    folder = tmp_path_factory.mktemp("run")
    write_metrics(folder, steps, seconds, int(cut_fraction * steps))
    assert fashion_table.full_epoch_seconds(folder) == pytest.approx(sum(seconds) / len(seconds))


def test_a_run_without_metrics_has_no_pace(fashion_table, tmp_path):
    assert fashion_table.full_epoch_seconds(tmp_path) is None


def test_recipe_rows_are_named_with_their_budget(fashion_table):
    rows = [
        {
            "recipe": "fast",
            "time_budget_seconds": None,
            "load_average_before": [0.5],
            "measured": "A",
        },
        {
            "recipe": "best",
            "time_budget_seconds": 77,
            "load_average_before": [0.4],
            "measured": "B",
        },
        {
            "recipe": "best",
            "time_budget_seconds": 225.0,
            "load_average_before": [1.0],
            "measured": "B",
        },
    ]
    text = fashion_table._conditions(rows)
    assert "A (fast); B (best 77 s, best 225 s)" in text


def test_results_are_written_whole_under_benchmarks_results(fashion_table, tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_table, "ROOT", tmp_path)
    out = fashion_table.write_result("probe", {"rows": [1, 2]})
    assert out == tmp_path / "benchmarks" / "results" / "probe.json"
    assert out.read_text() == '{\n  "rows": [\n    1,\n    2\n  ]\n}\n'
    assert [p.name for p in out.parent.iterdir()] == ["probe.json"]  # no temporary file left
