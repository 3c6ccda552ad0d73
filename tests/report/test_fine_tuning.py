"""The report's fine-tuning section: final.json's parameter-group table, shown and escaped.

Oracles: the ``transfer`` entry of the run's final.json (written by the trainer, checked against
a model built in tests/train/test_transfer.py), read back from the page's table cell by cell;
hand-written hostile and damaged records.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser

import pytest

from cnnkit.report import build_report
from tests.report.conftest import XSS

pytestmark = pytest.mark.slow  # the session's tiny training runs take a few seconds


class TableCells(HTMLParser):
    """The text of each row of the table with id ``table_id`` (header cells included)."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.rows, self.row_classes = table_id, [], []
        self._inside = self._body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == self.table_id:
            self._inside = True
        elif self._inside and tag == "tbody":
            self._body = True
        elif self._body and tag == "tr":
            self.rows.append([])
            self.row_classes.append(attrs.get("class"))
        elif self._body and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if self._body and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._inside = self._body = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table(html: str) -> TableCells:
    parser = TableCells("fine-tuning-table")
    parser.feed(html)
    return parser


def test_the_section_shows_final_jsons_table_row_by_row(fine_tuned_run):
    record = json.loads((fine_tuned_run / "final.json").read_text())["transfer"]
    html = build_report(fine_tuned_run, cam=False)
    shown = table(html)
    assert len(shown.rows) == len(record["rows"]) == 5
    for cells, classes, row in zip(shown.rows, shown.row_classes, record["rows"], strict=True):
        stage, params, trains, lr, batchnorm = cells
        assert stage == row["stage"]
        assert params == f"{row['parameters']:,}" and trains == f"{row['trainable']:,}"
        assert lr == ("frozen" if row["lr"] is None else f"{row['lr']:.3g}")
        assert classes == ("frozen" if row["frozen"] else "trains")
        assert batchnorm.startswith({"-": "–"}.get(row["batchnorm"], row["batchnorm"]))
    frozen = [cells[0] for cells in shown.rows if cells[3] == "frozen"]
    assert frozen == ["whiten", "layer1"]
    assert [cells[3] for cells in shown.rows if cells[0] in ("layer2", "fc")] == ["0.01", "0.1"]
    assert record["notes"][0] in html and "head <code>fc</code>" in html
    assert 'id="fine-tuning-mode">partial<' in html


def test_a_plain_run_says_it_fine_tuned_nothing(run_dir):
    html = build_report(run_dir, cam=False)
    assert table(html).rows == []
    assert "Not a fine-tuning run: every parameter trained" in html


def test_a_hostile_record_is_text_and_a_damaged_one_is_said(fine_tuned_run, tmp_path):
    run = tmp_path / "hostile"
    shutil.copytree(fine_tuned_run, run)
    final = json.loads((run / "final.json").read_text())
    evil = "<script>alert(2)</script>"
    final["transfer"]["mode"] = XSS
    final["transfer"]["notes"] = [evil]
    final["transfer"]["rows"][0].update(stage=evil, batchnorm=XSS, parameters=evil)
    (run / "final.json").write_text(json.dumps(final))
    html = build_report(run, cam=False)
    assert evil not in html and XSS not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    cells = table(html).rows[0]
    assert cells[0] == evil and cells[1] == evil and cells[4] == XSS  # shown as text

    for damaged in ("rows", {"rows": "x"}, {"rows": [1, 2]}, {"rows": None}):
        final["transfer"] = damaged
        (run / "final.json").write_text(json.dumps(final))
        html = build_report(run, cam=False)
        assert table(html).rows == []
        assert "fine-tuning record is not a table of stages: left out" in html, damaged

    del final["transfer"]  # a fine-tuning run from before cnnkit recorded the table
    (run / "final.json").write_text(json.dumps(final))
    html = build_report(run, cam=False)
    assert "does not record the parameter groups of this fine-tuning run" in html
