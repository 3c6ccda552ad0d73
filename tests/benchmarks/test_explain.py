"""benchmarks/explain.py: its tables show what the result holds; timing pairs alternate."""

from __future__ import annotations


def test_tables_render_every_row(explain_bench):
    row = {
        "method": "gradcam",
        "deletion_auc": 0.1,
        "insertion_auc": 0.6,
        "road_morf": 0.2,
        "road_lerf": 0.5,
        "beats_random": 4,
        "seconds": 0.1,
    }
    result = {
        "argv": "--checkpoint fast=x",
        "machine": "m",
        "load": "1.0",
        "peer_version": "1.5.7",
        "peer_note": "OpenCV",
        "peer": [
            {
                "model": "fast",
                "layer": "layer3",
                "method": "gradcam",
                "images": 4,
                "cnnkit_s": 0.5,
                "peer_s": 1.0,
                "ratio": 2.0,
                "max_abs_diff": 3e-7,
            }
        ],
        "ranking": [
            {
                "model": "fast",
                "layer": "layer3",
                "images": 16,
                "checkpoint_note": "airnet",
                "rows": [row, {**row, "method": "random"}],
            }
        ],
    }
    peer = explain_bench.render_peer(result)
    assert "| fast | layer3 | gradcam | 4 | 0.500 | 1.000 | 2.00 | 3e-07 |" in peer
    ranking = explain_bench.render_ranking(result)
    assert "| 1 | gradcam | 0.100 | 0.600 | 0.200 | 0.500 | 4/4 | 0.10 |" in ranking
    assert "| 2 | random |" in ranking


def test_paired_seconds_alternates_the_two_calls(explain_bench):
    calls = []
    first, second = explain_bench.paired_seconds(
        lambda: calls.append("a"), lambda: calls.append("b"), 3
    )
    assert calls == ["a", "b"] * 4 and first >= 0 and second >= 0
