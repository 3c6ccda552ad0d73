"""Benchmark: ``cnnkit doctor`` (static rules) against ``cnnkit summary`` on the same model.

The doctor's static rules read the graph that the summary's capture makes, so the goal (issue
20) is that doctor takes about as long as summary. Both calls start from the zoo factory, as
the CLI does (the model is built on the meta device), at 3x224x224, one torch thread, one
warm-up call each, then the two take turns for ``--repeats`` rounds: median wall and CPU time
and the minimum CPU time (the cost least disturbed by other jobs on a shared machine). The
probe is timed separately on a small model (it runs real steps, so it is not free).

torch-audit (the nearest peer, 24 static rules) is not installed here (no network), so the
ratio is against cnnkit's own summary, the floor the doctor is built on.

Writes ``benchmarks/results/doctor.json`` and the section "## Doctor: static rules vs
summary" of ``docs/benchmarks.md`` (only that section).

    python benchmarks/doctor.py [--repeats 5] [--models resnet152,resnet18]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from recording import load_average, write_markdown_section  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "doctor.json"
PAGE = ROOT / "docs" / "benchmarks.md"
SECTION = "## Doctor: static rules vs summary"
GOAL = 1.25  # "about as long as summary": within 25%


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """Warm up each function, then run them in turn ``repeats`` times."""
    for fn in fns.values():
        fn()
    walls: dict[str, list[float]] = {name: [] for name in fns}
    cpus: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    return {
        name: {
            "seconds": statistics.median(walls[name]),
            "cpu_seconds": statistics.median(cpus[name]),
            "min_cpu_seconds": min(cpus[name]),
        }
        for name in fns
    }


def speed(models: list[str], repeats: int) -> list[dict]:
    from cnnkit.analysis import summarize
    from cnnkit.doctor import examine
    from cnnkit.models import create_model

    rows = []
    for name in models:

        def factory(name: str = name) -> torch.nn.Module:
            return create_model(name)

        findings: list[int] = []

        def doctor(findings: list[int] = findings) -> None:
            findings[:] = [len(examine(factory, (3, 224, 224)).findings)]

        timings = interleaved(
            {"summary": lambda: summarize(factory, (3, 224, 224)), "doctor": doctor}, repeats
        )
        for tool, timing in timings.items():
            rows.append({"model": name, "tool": tool, **timing})
        rows[-1]["findings"] = findings[0]
    return rows


def probe_cost(repeats: int) -> dict:
    from cnnkit.doctor import examine
    from cnnkit.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18", in_channels=1, small_input=True)
    timings = interleaved(
        {
            "static": lambda: examine(model, (1, 28, 28)),
            "probe 5 steps": lambda: examine(model, (1, 28, 28), probe_steps=5),
        },
        max(1, repeats // 2),
    )
    return {"model": "resnet18 small_input", "input": [1, 28, 28], **timings}


def markdown(data: dict) -> str:
    env = data["environment"]
    lines = [
        SECTION,
        "",
        "`python benchmarks/doctor.py` (writes `benchmarks/results/doctor.json` and this "
        "section). `examine` with the static rules against `summarize`, both from the zoo "
        "factory at 3x224x224 as the CLI calls them (built and traced on the meta device), one "
        f"torch thread, after a warm-up call, taking turns for {data['repeats']} rounds.",
        "",
        f"Measured on {env['cpu']} ({env['cores']} cores, shared: load average "
        f"{env['load_before']} before, {env['load_after']} after), torch {env['torch']}, "
        f"{env['date']}.",
        "",
        "| model | tool | wall s | CPU s | min CPU s | min CPU vs summary |",
        "|---|---|---:|---:|---:|---:|",
    ]
    base = {r["model"]: r["min_cpu_seconds"] for r in data["speed"] if r["tool"] == "summary"}
    ratios = {}
    for row in data["speed"]:
        ratio = row["min_cpu_seconds"] / base[row["model"]]
        if row["tool"] == "doctor":
            ratios[row["model"]] = ratio
        lines.append(
            f"| {row['model']} | {row['tool']} | {row['seconds']:.3f} | {row['cpu_seconds']:.3f} "
            f"| {row['min_cpu_seconds']:.3f} | {ratio:.2f}x |"
        )
    met = [m for m, r in ratios.items() if r <= GOAL]
    probe = data["probe"]
    lines += [
        "",
        f"Goal 'about as long as summary' (within {GOAL:.2f}x, minimum CPU time): met on "
        f"{len(met)} of {len(ratios)} models. The probe is not free: on {probe['model']} at "
        f"1x28x28 the static rules took {probe['static']['min_cpu_seconds']:.3f} s CPU and "
        f"`--probe-steps 5` {probe['probe 5 steps']['min_cpu_seconds']:.3f} s (a deep copy "
        "and five real training steps on a batch of 8).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="resnet152")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from cnnkit._io import atomic_write_text
    from cnnkit.runtime import cpu_model

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    load_before = load_average()
    data = {
        "repeats": args.repeats,
        "speed": speed(args.models.split(","), args.repeats),
        "probe": probe_cost(args.repeats),
    }
    data["environment"] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_before": load_before,
        "load_after": load_average(),
    }
    atomic_write_text(RESULT, json.dumps(data, indent=2) + "\n")
    write_markdown_section(markdown(data), PAGE)
    print(markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
