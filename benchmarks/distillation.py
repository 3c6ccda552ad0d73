"""Benchmark: does a stronger teacher make a small student better (issue 21, E6)?

Each student (LeNet-5 and the ``fast`` airnet, their own recipes) trains with and without a
teacher under the same budget, on real Fashion-MNIST, for each seed; the gain is the paired
difference of test top-1 (same seed: same initialisation, batches and augmentation), reported as
its mean with the sample standard deviation and the range over the seeds, whatever its sign.
Teachers: the ``best`` recipe's checkpoint and ResNet-18 (small-input, seed 003's recipe).

Every run is ``cnnkit train`` in a subprocess (the command is recorded); teacher runs are reused
when their folder already holds a best.pt. The teacher's forward pass is part of the student's
step, so under a time budget the taught student sees fewer images: the table shows both.

Writes ``benchmarks/results/distillation.json`` (or ``distillation_quick.json``) with every
run, the machine and the load average, and prints the markdown table for docs/distillation.md.

    # the configuration recorded in docs/benchmarks.md (a loaded 2-core machine): one teacher
    # (best, 4 epochs), students for a fixed number of epochs (load-independent), 3 seeds
    python benchmarks/distillation.py --quick
    # the full configuration: both teachers (best at its 225 s budget, ResNet-18 for 10 epochs),
    # students under time budgets (LeNet-5 120 s, fast 42 s), 3 seeds
    python benchmarks/distillation.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# label -> `cnnkit train` arguments of the teacher (full, quick)
TEACHERS: dict[str, tuple[list[str], list[str]]] = {
    "best": (["--recipe", "best"], ["--recipe", "best", "--time-budget", "none", "--epochs", "4"]),
    # seed 003's recipe under bf16 autocast (twice its fp32 speed on a CPU with bf16 units); the
    # quick teacher trains 2 epochs (about 35 min on one core), the full one 10
    "resnet18": (
        ["--recipe", "seed003", "--epochs", "10", "--schedule-epochs", "10", "--precision", "auto"],
        ["--recipe", "seed003", "--epochs", "2", "--schedule-epochs", "2", "--precision", "auto"],
    ),
}
# label -> `cnnkit train` arguments of the student (full: a time budget; quick: fixed epochs)
STUDENTS: dict[str, tuple[list[str], list[str]]] = {
    "lenet5": (
        ["--recipe", "lenet5", "--time-budget", "120", "--epochs", "1000"],
        ["--recipe", "lenet5", "--epochs", "2"],
    ),
    "fast": (
        ["--recipe", "fast"],
        ["--recipe", "fast", "--time-budget", "none", "--epochs", "1"],
    ),
}
COMMON = ["--no-progress", "--no-plots", "--no-tensorboard", "--no-report", "--no-doctor"]


def load_average() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def train(arguments: list[str], out: Path, threads: int = 1) -> dict:
    """``cnnkit train ARGS --out OUT``; returns its final.json, the command and the load."""
    flags = [*COMMON, "--threads", str(threads), "--out", str(out)]
    command = [sys.executable, "-m", "cnnkit", "train", *arguments, *flags]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    before = load_average()
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr[-2000:]}")
    final = json.loads((out / "final.json").read_text())
    shown = " ".join(["cnnkit", "train", *arguments, *flags])
    return {
        "command": shown.replace(f"{ROOT}/", ""),
        "test_top1": final["test_top1"],
        "epochs": final["epochs"],
        "stopped": final["stopped"],
        "wall_seconds": final["wall_seconds"],
        "end_to_end_seconds": round(time.perf_counter() - started, 1),
        "images_per_second": final.get("images_per_second"),
        "load_average_before": before,
    }


def teacher_run(
    label: str, arguments: list[str], runs: Path, given: Path | None = None, threads: int = 1
) -> dict:
    """The teacher's run folder: ``given`` (an existing run), else ``runs/teacher-LABEL``, which
    is trained unless it already holds a run."""
    out = given or runs / f"teacher-{label}"
    if (out / "final.json").is_file():  # reuse: a teacher is the expensive part
        final = json.loads((out / "final.json").read_text())
        return {"label": label, "reused": str(out), "test_top1": final["test_top1"]}
    return {"label": label, **train(arguments, out, threads)}


def paired_gain(plain: list[float], taught: list[float]) -> dict:
    """Per-seed differences taught - plain: mean, sample standard deviation, range."""
    gains = [b - a for a, b in zip(plain, taught, strict=True)]
    return {
        "gain_mean": statistics.fmean(gains),
        "gain_std": statistics.stdev(gains) if len(gains) > 1 else None,
        "gain_min": min(gains),
        "gain_max": max(gains),
        "plain_mean": statistics.fmean(plain),
        "taught_mean": statistics.fmean(taught),
    }


def table(result: dict) -> str:
    """The markdown table of docs/distillation.md and docs/benchmarks.md."""
    lines = [
        "| student | teacher (its top-1) | without teacher | with teacher | gain (mean ± sd, "
        "range) | images/s without / with |",
        "|---|---|---|---|---|---|",
    ]
    teachers = {t["label"]: t for t in result["teachers"]}
    for row in result["summary"]:
        teacher = teachers[row["teacher"]]
        sd = f" ± {row['gain_std']:.2f}" if row["gain_std"] is not None else ""
        lines.append(
            f"| {row['student']} | {row['teacher']} ({teacher['test_top1']:.2f}%) | "
            f"{row['plain_mean']:.2f}% | {row['taught_mean']:.2f}% | "
            f"{row['gain_mean']:+.2f}{sd} ({row['gain_min']:+.2f} to {row['gain_max']:+.2f}) | "
            f"{row['plain_images_per_second']:,.0f} / {row['taught_images_per_second']:,.0f} |"
        )
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """One panel per student: each seed's test top-1 without and with each teacher, joined by a
    line (a rising line is a gain for that seed), the mean as a red mark."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    students = list(dict.fromkeys(r["student"] for r in result["runs"]))
    labels = [None, *(t["label"] for t in result["teachers"])]
    figure = Figure(figsize=(3.2 * len(students), 3.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(students), squeeze=False)[0]
    for ax, student in zip(axes, students, strict=True):
        runs = [r for r in result["runs"] if r["student"] == student]
        seeds = sorted({r["seed"] for r in runs})
        scores = {
            label: [
                next(r["test_top1"] for r in runs if r["teacher"] == label and r["seed"] == s)
                for s in seeds
            ]
            for label in labels
        }
        for position, label in enumerate(labels):
            mean = sum(scores[label]) / len(seeds)  # a mark, not a bar: the axis is cut
            ax.hlines(mean, position - 0.2, position + 0.2, color="#c0392b", linewidth=2.5)
        for index in range(len(seeds)):
            ax.plot(
                range(len(labels)),
                [scores[label][index] for label in labels],
                "o-",
                color="#2b5d9b",
                alpha=0.7,
            )
        values = [v for label in labels for v in scores[label]]
        ax.set_ylim(min(values) - 0.5, max(values) + 0.5)
        ax.set_xticks(range(len(labels)), ["no teacher", *(f"{t} teacher" for t in labels[1:])])
        ax.set_title(student)
        ax.set_ylabel("test top-1 (%)")
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one teacher, fixed short epochs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--students", default=",".join(STUDENTS))
    parser.add_argument("--teachers", default=None, help="default: all")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-distillation")
    parser.add_argument(
        "--teacher-run",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="an existing run folder as teacher LABEL (e.g. one benchmarks/robustness.py trained)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every run")
    parser.add_argument("--out", type=Path, default=None, help="the results file")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "images" / "distillation.png")
    parser.add_argument(
        "--redraw", type=Path, metavar="JSON", help="only redraw the plot from a results file"
    )
    args = parser.parse_args()
    if args.redraw is not None:
        plot(json.loads(args.redraw.read_text()), args.plot)
        return
    mode = 1 if args.quick else 0
    runs = args.runs / ("quick" if args.quick else "full")
    wanted = args.teachers.split(",") if args.teachers else list(TEACHERS)
    given = {k: Path(v) for k, _, v in (item.partition("=") for item in args.teacher_run)}
    teachers = []
    for label in wanted:
        teachers.append(
            teacher_run(label, TEACHERS[label][mode], runs, given.get(label), args.threads)
        )
        print(json.dumps(teachers[-1]), flush=True)
    rows = []
    for student in args.students.split(","):
        arguments = STUDENTS[student][mode]
        for seed in range(args.seeds):
            seeded = [*arguments, "--seed", str(seed)]
            plain = train(seeded, runs / f"{student}-plain-s{seed}", args.threads)
            rows.append({"student": student, "teacher": None, "seed": seed, **plain})
            print(json.dumps(rows[-1]), flush=True)
            for teacher in teachers:
                distil = [
                    "--teacher",
                    str(
                        given.get(teacher["label"], runs / f"teacher-{teacher['label']}")
                        / "best.pt"
                    ),
                    "--distill-alpha",
                    str(args.alpha),
                    "--distill-temperature",
                    str(args.temperature),
                ]
                out = runs / f"{student}-{teacher['label']}-s{seed}"
                taught = train([*seeded, *distil], out, args.threads)
                rows.append(
                    {"student": student, "teacher": teacher["label"], "seed": seed, **taught}
                )
                print(json.dumps(rows[-1]), flush=True)
    summary = []
    for student in args.students.split(","):
        plain = [r for r in rows if r["student"] == student and r["teacher"] is None]
        for teacher in teachers:
            taught = [
                r for r in rows if r["student"] == student and r["teacher"] == teacher["label"]
            ]
            summary.append(
                {
                    "student": student,
                    "teacher": teacher["label"],
                    "seeds": len(taught),
                    **paired_gain(
                        [r["test_top1"] for r in plain], [r["test_top1"] for r in taught]
                    ),
                    "plain_images_per_second": statistics.fmean(
                        r["images_per_second"] for r in plain
                    ),
                    "taught_images_per_second": statistics.fmean(
                        r["images_per_second"] for r in taught
                    ),
                    "plain_epochs": [r["epochs"] for r in plain],
                    "taught_epochs": [r["epochs"] for r in taught],
                }
            )
    sys.path.insert(0, str(ROOT / "src"))
    from cnnkit import runtime
    from cnnkit._io import atomic_write_text

    result = {
        "benchmark": "distillation",
        "configuration": "quick" if args.quick else "full",
        "command": " ".join(["python", "benchmarks/distillation.py", *sys.argv[1:]]),
        "alpha": args.alpha,
        "temperature": args.temperature,
        "machine": {"cpu": runtime.cpu_model(), "cores": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_after": load_average(),
        "teachers": teachers,
        "runs": rows,
        "summary": summary,
    }
    name = "distillation_quick.json" if args.quick else "distillation.json"
    out = args.out or RESULTS / name
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    plot(result, args.plot)
    print(table(result))


if __name__ == "__main__":
    main()
