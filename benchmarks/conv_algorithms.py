"""Benchmark: cnnkit.reference's conv2d methods on ResNet-18's layer shapes (B2, seed 002).

Runs ``cnnkit.lab.conv_algorithms`` on the ResNet-18 layers (224x224 input) and writes

- ``benchmarks/results/conv_algorithms.json``: the environment and every measurement;
- the section "## Convolution algorithms" of ``docs/benchmarks.md`` (only that section is
  replaced; the file is created if missing).

Goals checked (and reported, not asserted): im2col within 3x of ``torch.nn.functional.conv2d``
on every shape; Winograd F(2x2, 3x3) needs 2.25x fewer multiplies (counted).

    python benchmarks/conv_algorithms.py [--threads 1] [--repeats 7] [--batch 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import textwrap
import time
from pathlib import Path

import torch

from cnnkit._io import atomic_write_text
from cnnkit.lab import RESNET18_SHAPES, conv_algorithms
from cnnkit.runtime import cpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from recording import load_average, write_markdown_section  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "conv_algorithms.json"
PAGE = ROOT / "docs" / "benchmarks.md"
SECTION = "## Convolution algorithms"
IM2COL_GOAL = 3.0


def run(threads: int, repeats: int, batch: int, budget: float) -> dict:
    torch.set_num_threads(threads)
    shapes = [dataclasses.replace(shape, batch=batch) for shape in RESNET18_SHAPES]
    load_before, start = load_average(), time.time()
    result = conv_algorithms(shapes, repeats=repeats, budget_seconds=budget)
    data = result.to_dict()
    im2col = [m for m in result.measurements if m.method == "im2col"]
    winograd = [f.winograd for f in result.figures if f.winograd is not None]
    data["goals"] = {
        "im2col_time_vs_torch_max": max(m.time_vs_torch for m in im2col),
        "im2col_within_3x": sum(m.time_vs_torch <= IM2COL_GOAL for m in im2col),
        "shapes": len(im2col),
        "winograd_multiply_ratio": [w.ratio for w in winograd],
    }
    data["environment"] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "batch": batch,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "wall_seconds": round(time.time() - start, 1),
        "date": time.strftime("%Y-%m-%d"),
    }
    return data


def _cell(value, pattern: str, scale: float = 1.0) -> str:
    return "-" if value is None else pattern.format(value * scale)


def markdown(data: dict) -> str:
    env, goals = data["environment"], data["goals"]
    intro = (
        "`python benchmarks/conv_algorithms.py` (writes `benchmarks/results/conv_algorithms.json`"
        " and this section). Every method of `cnnkit.reference.conv2d` on ResNet-18's layer "
        f"shapes at 224x224, batch {env['batch']}, float32, next to `torch.nn.functional.conv2d`"
        " (the anchor). Max error: largest |y - F.conv2d| with F.conv2d in float64. Times: median"
        " of interleaved runs (fewer for slow methods), as wall time and as the process's CPU"
        " time; 'vs torch' is the ratio of CPU times, which other jobs on a shared machine do not"
        " inflate (one thread, so CPU time is what the wall time of an idle machine would be)."
        " Peak extra: bytes live at once beyond the output, measured with torch.profiler (memory"
        " that a library allocates itself, such as oneDNN scratch space, is not visible)."
    )
    machine = (
        f"Measured on {env['cpu']} ({env['cpu_count']} cores, shared with other jobs: load "
        f"average {env['load_average_before']} before, {env['load_average_after']} after), "
        f"{env['threads']} thread(s), torch {env['torch']}, {env['date']}. On this busy machine"
        " the wall times are inflated by waiting for a core; the CPU times are not."
    )
    lines = [
        SECTION,
        "",
        textwrap.fill(intro, 100),
        "",
        textwrap.fill(machine, 100),
        "",
        "| layer | method | max error | wall ms | cpu ms | vs torch (cpu) | peak extra (MB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in data["measurements"]:
        name = row["shape"].split(" (")[0]
        if row["note"]:
            lines.append(f"| {name} | {row['method']} | {row['note']} | | | | |")
            continue
        lines.append(
            f"| {name} | {row['method']} | {_cell(row['max_error'], '{:.1e}')} | "
            f"{_cell(row['seconds'], '{:.2f}', 1e3)} | "
            f"{_cell(row['cpu_seconds'], '{:.2f}', 1e3)} | "
            f"{_cell(row['time_vs_torch'], '{:.2f}x')} | "
            f"{_cell(row['peak_extra_bytes'], '{:.2f}', 1e-6)} |"
        )
    lines += ["", "| layer | shape | MACs | im2col bill (002), MB | Winograd multiplies | saving |",
              "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for figures in data["figures"]:
        label = figures["shape"]["label"]
        name, shape = label.split(" (", 1)
        winograd = figures["winograd"]
        lines.append(
            f"| {name} | {shape.rstrip(')')} | {figures['macs']:,} | "
            f"{figures['im2col_bytes'] / 1e6:.2f} | "
            + (f"{winograd['winograd']:,} | {winograd['ratio']:.2f}x |" if winograd else "- | - |")
        )
    goal_text = (
        f"Goal, im2col within {IM2COL_GOAL:g}x of torch (CPU time): met on "
        f"{goals['im2col_within_3x']} of {goals['shapes']} shapes (largest ratio "
        f"{goals['im2col_time_vs_torch_max']:.2f}x). "
        "Goal, Winograd's saving by count: "
        + ", ".join(f"{r:.2f}x" for r in goals["winograd_multiply_ratio"])
        + " fewer multiplies on the 3x3 stride-1 layers (36 vs 16 per 2x2 tile and channel pair;"
        " a 7x7 output uses 4x4 tiles, so part of the last tiles is wasted). The count is checked"
        " against torch.utils.flop_counter in tests/reference/test_winograd.py."
    )
    lines += ["", textwrap.fill(goal_text, 100), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (default: 7)")
    parser.add_argument("--batch", type=int, default=1, help="images per call (default: 1)")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per slow method")
    args = parser.parse_args(argv)
    data = run(args.threads, args.repeats, args.batch, args.budget)
    atomic_write_text(RESULT, json.dumps(data, indent=2) + "\n")
    write_markdown_section(markdown(data), PAGE)
    print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
