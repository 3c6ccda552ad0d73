"""The run report (I1): one self-contained HTML page per training run, or runs side by side.

``write_report(run_dir)`` writes ``RUN_DIR/report.html``; ``write_report([a, b], out)`` the
comparison page. :class:`RunSummary` (``load_run``) is what a run folder holds; the page's
pictures and tables are computed from it and from the test predictions recomputed from the
run's checkpoint (:func:`recompute`). See docs/report.md.
"""

from __future__ import annotations

from cnnkit.report.page import build_comparison, build_report, write_report
from cnnkit.report.predictions import ClassStats, Predictions, TestRun, recompute
from cnnkit.report.run import RunSummary, load_run

__all__ = [
    "ClassStats",
    "Predictions",
    "RunSummary",
    "TestRun",
    "build_comparison",
    "build_report",
    "load_run",
    "recompute",
    "write_report",
]
