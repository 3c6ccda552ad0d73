"""Renderers format what the Summary holds: every number they print comes from it, and the
ASCII/Mermaid diagrams draw exactly the captured edges."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch
from torch import nn

from cnnkit.analysis import summarize
from cnnkit.analysis.render import (
    render_ascii,
    render_csv,
    render_json,
    render_markdown,
    render_mermaid,
    render_table,
)
from tests.analysis.models import TinyResNet


@pytest.fixture(scope="module")
def summary():
    return summarize(TinyResNet(), (3, 16, 16))


def test_json_is_the_summary_dict(summary):
    assert json.loads(render_json(summary)) == json.loads(json.dumps(summary.to_dict()))


def test_csv_has_one_line_per_layer_and_the_totals(summary):
    rows = list(csv.DictReader(io.StringIO(render_csv(summary))))
    assert len(rows) == len(summary.layers) + 1
    for line, row in zip(rows, summary.layers, strict=False):
        assert line["name"] == row.name and int(line["macs"]) == row.macs
        assert int(line["params"]) == row.params
    total = rows[-1]
    assert total["name"] == "(total)" and int(total["macs"]) == summary.total.macs
    assert total["rf"] == "13"


def test_markdown_table_rows_and_totals(summary):
    text = render_markdown(summary)
    lines = [line for line in text.splitlines() if line.startswith("| `")]
    assert [line.split("`")[1] for line in lines] == [row.name for row in summary.layers]
    assert f"MACs: {summary.total.macs:,}" in text


@pytest.mark.parametrize("width", [80, 100, 140])
def test_table_lists_every_layer_and_fits_the_width(summary, width):
    text = render_table(summary, width=width)
    for row in summary.layers:
        assert row.name in text
    table = text.split("Input:")[0]
    assert max(len(line) for line in table.splitlines()) <= width
    assert f"{summary.total.params:,}" in text and "Receptive field at layer2.relu: 13" in text


def test_ascii_draws_branches_and_joins(summary):
    text = render_ascii(summary)
    graph = [line.split("  ")[0].rstrip() for line in text.splitlines()]
    assert text.count("●") == len(summary.layers) + 1
    assert graph[:4] == ["●"] * 4  # input, stem.0, stem.1, stem.2 on one lane
    assert graph[4] == "├─╮"  # stem.2's output forks: the block, and the identity
    assert graph[10] == "├─┘"  # joined by the residual add
    assert "layer1.add (+)" in text


def test_ascii_of_three_branches_crossing_lanes():
    class Three(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.a(x), self.b(x), x], 1)

    text = render_ascii(summarize(Three(), (1, 4, 4)))
    assert [line.split("  ")[0].rstrip() for line in text.splitlines()] == [
        "●", "├─╮", "│ ●", "├─┼─╮", "│ │ ●", "├─┴─┘", "●",
    ]  # fmt: skip


def test_mermaid_has_every_node_and_captured_edge(summary):
    text = render_mermaid(summary)
    assert text.startswith("graph LR\n")
    edges = [line for line in text.splitlines() if "-->" in line]
    assert len(edges) == sum(len(row.inputs) for row in summary.layers)
    add = [row.name for row in summary.layers].index("layer1.add")
    assert f'n{add}(("+"))' in text
    assert f"n{add - 1} --> n{add}" in text and "input --> n0" in text
