"""benchmarks/doctor.py: its section renders from a result and replaces only itself
(benchmarks/recording.py replaces it)."""

from __future__ import annotations

from tests.benchmarks.conftest import load_script


def test_markdown_and_section_replacement() -> None:
    script = load_script("doctor")
    timing = {"seconds": 1.0, "cpu_seconds": 0.5, "min_cpu_seconds": 0.4}
    data = {
        "repeats": 2,
        "speed": [
            {"model": "m", "tool": "summary", **timing},
            {"model": "m", "tool": "doctor", **{**timing, "min_cpu_seconds": 0.6}},
        ],
        "probe": {"model": "p", "static": timing, "probe 5 steps": timing},
        "environment": {"cpu": "x", "cores": 2, "torch": "t", "date": "d",
                        "load_before": [1.0], "load_after": [2.0]},
    }  # fmt: skip
    text = script.markdown(data)
    assert "| m | doctor | 1.000 | 0.500 | 0.600 | 1.50x |" in text
    assert "met on 0 of 1 models" in text
    page = "# B\n\n## A\n\nold\n\n" + script.SECTION + "\n\nold\n\n## Z\n\nz\n"
    replaced = load_script("recording").replace_section(page, text)
    assert replaced.count(script.SECTION) == 1 and "## Z\n\nz\n" in replaced
    assert "## A\n\nold" in replaced and "\nold\n\n## Z" not in replaced
