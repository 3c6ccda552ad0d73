"""Benchmark: the run report of the demo run, its size and how fast Chromium renders it.

Goals (issue 18): the page of the demo run (the ``fast`` recipe on real Fashion-MNIST) is under
5 MB and renders in headless Chromium in under 2 s. Measures, in one process: the time to build
the page (``cnnkit.report.build_report``: reading the run, recomputing the 10,000 test
predictions, plots, model summary), its size in bytes, and the time from navigation start to the
end of the load event (``PerformanceNavigationTiming.loadEventEnd``) over ``--repeats`` loads from
file:// in one headless Chromium (Debian's chromium and chromium-driver through selenium), with
the time to DOMContentLoaded. There is no peer page to race: the figures are set against the
goals.

Writes benchmarks/results/report.json and the "Report: page size and render time" section of
docs/benchmarks.md. Usage: ``python benchmarks/report.py [--run RUN_DIR] [--repeats 5]``;
without ``--run`` it first trains the demo run (``cnnkit train --recipe fast``, or with
``--smoke`` a 10 s budget) into a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

from fashion_table import machine_info, machine_label, write_result  # noqa: E402
from recording import write_section  # noqa: E402

SIZE_GOAL_BYTES = 5_000_000
RENDER_GOAL_SECONDS = 2.0


def train_demo(out: Path, smoke: bool) -> Path:
    """The demo run (the ``fast`` recipe on Fashion-MNIST) into ``out``."""
    command = [sys.executable, "-m", "cnnkit", "train", "--recipe", "fast", "--out", str(out)]
    command += ["--no-progress", "--no-tensorboard", "--no-plots"]
    if smoke:
        command += ["--time-budget", "10"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run(command, check=True, env=env)
    return out


def chromium():
    """Headless Debian Chromium through selenium, offline (explicit driver, no statistics)."""
    os.environ["SE_AVOID_STATS"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def render_times(page: Path, repeats: int) -> list[dict[str, float]]:
    """Load ``page`` ``repeats`` times; milliseconds to DOMContentLoaded and to the load end."""
    driver = chromium()
    try:
        rows = []
        for _ in range(repeats):
            driver.get("about:blank")
            driver.get(page.resolve().as_uri())
            rows.append(
                driver.execute_script(
                    "var n = performance.getEntriesByType('navigation')[0];"
                    "return {load_ms: n.loadEventEnd, dom_ms: n.domContentLoadedEventEnd,"
                    " images: document.images.length};"
                )
            )
        return rows
    finally:
        driver.quit()


def measure(run_dir: Path, repeats: int) -> dict:
    from cnnkit.report import build_report

    load_before = list(os.getloadavg())
    started = time.perf_counter()
    html = build_report(run_dir)
    build_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "report.html"
        page.write_text(html, encoding="utf-8")
        loads = render_times(page, repeats)
    size = len(html.encode("utf-8"))
    load_s = statistics.median(row["load_ms"] for row in loads) / 1000
    return {
        "run": str(run_dir),
        "repeats": repeats,
        "page_bytes": size,
        "size_goal_bytes": SIZE_GOAL_BYTES,
        "size_ratio_to_goal": size / SIZE_GOAL_BYTES,
        "build_seconds": build_seconds,
        "render_seconds_median": load_s,
        "render_seconds_all": [row["load_ms"] / 1000 for row in loads],
        "dom_ready_seconds_median": statistics.median(row["dom_ms"] for row in loads) / 1000,
        "render_goal_seconds": RENDER_GOAL_SECONDS,
        "render_ratio_to_goal": load_s / RENDER_GOAL_SECONDS,
        "images": loads[0]["images"],
        "machine": {
            **machine_info(),
            "load_before": load_before,
            "load_after": list(os.getloadavg()),
        },
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def render(result: dict) -> str:
    """The docs/benchmarks.md section."""
    machine = result["machine"]
    load = ", ".join(f"{v:.1f}" for v in machine["load_before"])
    verdict = lambda ok: "met" if ok else "missed"  # noqa: E731
    size_ok = result["page_bytes"] < result["size_goal_bytes"]
    render_ok = result["render_seconds_median"] < result["render_goal_seconds"]
    return (
        "`python benchmarks/report.py --run RUN_DIR` (results/report.json): the page of a demo "
        "run (the `fast` recipe on Fashion-MNIST, 10,000 test predictions recomputed), built "
        "once and loaded from file:// in headless Debian Chromium "
        f"{result['repeats']} times (median of the navigation's `loadEventEnd`).\n\n"
        "| page size | goal | render (load event) | DOM ready | goal | images | build |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| {result['page_bytes'] / 1e6:.2f} MB | < 5 MB ({verdict(size_ok)}) "
        f"| {result['render_seconds_median']:.2f} s | "
        f"{result['dom_ready_seconds_median']:.2f} s | < 2 s ({verdict(render_ok)}) "
        f"| {result['images']} | {result['build_seconds']:.1f} s |\n\n"
        f"Measured {result['measured']} on {machine_label(machine)}, load average {load} "
        "(1, 5, 15 min) before the run: the machine was shared, so the build time is an upper "
        "bound. There is no peer to race (TensorBoard shows no confusion images); the figures are "
        "set against the issue's goals."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run folder (default: train the demo run)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="a 10 s demo run, 2 loads")
    args = parser.parse_args()
    repeats = 2 if args.smoke else args.repeats
    with tempfile.TemporaryDirectory() as folder:
        run_dir = args.run or train_demo(Path(folder) / "demo", args.smoke)
        result = measure(run_dir, repeats)
    print(write_result("report", result))
    write_section("Report: page size and render time", render(result))
    print(render(result))


if __name__ == "__main__":
    main()
