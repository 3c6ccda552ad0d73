"""benchmarks/report.py: its docs section states the figures against the issue's goals."""

from __future__ import annotations

from tests.benchmarks.conftest import load_script


def test_the_section_states_size_and_render_time_against_the_goals():
    bench = load_script("report")
    machine = {"cpu": "x", "cores": 2, "load_before": [9.0, 8.1, 4.9], "load_after": [9.5]}
    result = {
        "repeats": 5,
        "page_bytes": 330_000,
        "size_goal_bytes": bench.SIZE_GOAL_BYTES,
        "render_seconds_median": 0.14,
        "dom_ready_seconds_median": 0.1,
        "render_goal_seconds": bench.RENDER_GOAL_SECONDS,
        "images": 165,
        "build_seconds": 56.1,
        "machine": machine,
        "measured": "2026-12-06 11:53 UTC",
    }
    text = bench.render(result)
    assert "| 0.33 MB | < 5 MB (met) | 0.14 s | 0.10 s | < 2 s (met) | 165 | 56.1 s |" in text
    assert "load average 9.0, 8.1, 4.9" in text
    slow = bench.render({**result, "page_bytes": 6_000_000, "render_seconds_median": 3.0})
    assert "< 5 MB (missed)" in slow and "< 2 s (missed)" in slow
