"""Benchmark: which training choice buys which robustness (issue 21, E5).

Trains (or reuses) one checkpoint per configuration below, then measures each with
``cnnkit.train.robustness.evaluate_robustness``: top-1 under every corruption at severities 1-5,
the clean top-1, mCE against the first configuration (the ``fast`` recipe), and the accuracy and
inference speed with halved images (001's review question). One torch thread per process.

Writes ``benchmarks/results/robustness.json`` (all numbers, the machine, the load average and the
command) and prints a markdown table for docs/robustness.md and docs/benchmarks.md.

    # the smoke configuration recorded in docs/benchmarks.md (a loaded 2-core machine):
    python benchmarks/robustness.py --configs fast,fast_rotation --limit 1000
    # the full configuration (fast, best, ResNet-18, each with and without augmentations), each
    # trained for the same number of epochs whatever the load:
    python benchmarks/robustness.py --configs all --fixed-epochs 10
    # what docs/benchmarks.md records (2 cores; all but resnet18_rotation, 2,000 test images):
    python benchmarks/robustness.py \
        --configs fast,fast_rotation,fast_crop,fast_jitter,best,best_rotation,resnet18 \
        --fixed-epochs 3 --epochs-of best=8 --epochs-of best_rotation=8 --epochs-of resnet18=2 \
        --limit 2000
    # an existing run instead of training: LABEL=PATH
    python benchmarks/robustness.py --checkpoint fast=/tmp/i21r-fast
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from recording import load_average  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "robustness.json"

# label -> `cnnkit train` arguments; the augmented twins add what targets one shift each
CONFIGS: dict[str, list[str]] = {
    "fast": ["--recipe", "fast"],
    "fast_rotation": ["--recipe", "fast", "--rotation", "15"],
    "fast_crop": ["--recipe", "fast", "--crop-padding", "2"],
    "fast_jitter": ["--recipe", "fast", "--color-jitter", "0.4"],
    "best": ["--recipe", "best"],
    "best_rotation": ["--recipe", "best", "--rotation", "15"],
    # bf16 autocast: twice seed 003's fp32 speed on a CPU with bf16 units (AVX512-BF16)
    "resnet18": ["--recipe", "seed003", "--epochs", "10", "--precision", "auto"],
    "resnet18_rotation": [
        *("--recipe", "seed003", "--epochs", "10", "--precision", "auto"),
        *("--rotation", "15"),
    ],
}


def train(label: str, runs: Path, epochs: int | None) -> Path:
    """Train configuration ``label`` into ``runs/label`` unless a run is already there.

    ``epochs``: a fixed length instead of the recipe's time budget, so that the checkpoints see
    the same number of steps whatever the load of the machine (a 42 s budget is 45 steps on a
    loaded 2-core machine and hundreds on an idle one).
    """
    out = runs / label
    if (out / "best.pt").is_file():
        return out
    command = [sys.executable, "-m", "cnnkit", "train", *CONFIGS[label], "--out", str(out)]
    command += ["--no-plots", "--no-tensorboard"]
    if epochs is not None:  # the schedule spans the epochs that run (seed003 plans for 50)
        command += [
            "--time-budget",
            "none",
            "--epochs",
            str(epochs),
            "--schedule-epochs",
            str(epochs),
        ]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return out


def recorded_result(entry: dict):
    """A result read back from a results file (its resolution figures are copied separately)."""
    from cnnkit.train.robustness import RobustnessResult

    return RobustnessResult(
        checkpoint=entry["checkpoint"],
        dataset=entry["dataset"],
        images=entry["images"],
        tta=entry["tta"],
        seed=entry["seed"],
        severities=tuple(entry["severities"]),
        clean_top1=entry["clean_top1"],
        top1={name: tuple(row) for name, row in entry["top1"].items()},
        table_version=entry["severity_table_version"],
        seconds=entry["seconds"],
        parameters=entry.get("parameters", {}),
    )


def markdown(results: dict[str, dict]) -> str:
    """Top-1 per corruption (mean over severities 1-5) for each checkpoint, and mCE."""
    labels = list(results)
    names = list(next(iter(results.values()))["top1"])
    lines = [
        "| corruption | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
        "| clean | " + " | ".join(f"{results[k]['clean_top1']:.2f}" for k in labels) + " |",
    ]
    for name in names:
        cells = [sum(results[k]["top1"][name]) / len(results[k]["top1"][name]) for k in labels]
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in cells) + " |")
    lines.append(
        "| mean corrupted | " + " | ".join(f"{results[k]['mean_top1']:.2f}" for k in labels) + " |"
    )
    lines.append(
        "| mCE vs first | "
        + " | ".join(
            "100.0" if results[k]["mce"] is None else f"{results[k]['mce']:.1f}" for k in labels
        )
        + " |"
    )
    for key, title in (
        ("upsampled_top1", "halved, upsampled"),
        ("native_top1", "halved, fed at 14x14"),
    ):
        cells = []
        for k in labels:
            value = (results[k]["resolution"] or {}).get(key)
            cells.append("-" if value is None else f"{value:.2f}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    for key, title in (
        ("full_images_per_second", "img/s at 28x28"),
        ("native_images_per_second", "img/s at 14x14"),
    ):
        cells = []
        for k in labels:
            value = (results[k]["resolution"] or {}).get(key)
            cells.append("-" if value is None else f"{value:,.0f}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="fast", help="comma-separated labels, or all")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--runs", default="/tmp/cnnkit-robustness-runs", help="run folders")
    parser.add_argument("--limit", type=int, default=None, help="first N test images only")
    parser.add_argument("--corruptions", default=None, help="comma-separated (default: all)")
    parser.add_argument("--resolution", type=float, default=0.5)
    parser.add_argument(
        "--fixed-epochs", type=int, default=None, help="train N epochs instead of the time budget"
    )
    parser.add_argument(
        "--epochs-of",
        action="append",
        default=[],
        metavar="LABEL=N",
        help="a fixed length for one configuration (overrides --fixed-epochs)",
    )
    parser.add_argument("--train-only", action="store_true", help="train, do not evaluate")
    parser.add_argument("--out", type=Path, default=RESULT, help="the results file")
    parser.add_argument(
        "--reuse",
        type=Path,
        default=None,
        metavar="JSON",
        help="take the results of labels already in this results file (same --limit) as measured",
    )
    parser.add_argument(
        "--baseline", default="fast", help="the label mCE is relative to (default: fast)"
    )
    args = parser.parse_args()
    epochs_of = {k: int(v) for k, _, v in (item.partition("=") for item in args.epochs_of)}

    import torch

    from cnnkit.runtime import cpu_model
    from cnnkit.train.robustness import evaluate_robustness

    torch.set_num_threads(1)
    checkpoints: dict[str, Path] = {}
    for item in args.checkpoint:
        label, _, path = item.partition("=")
        checkpoints[label] = Path(path)
    if not args.checkpoint or args.configs != "fast":
        labels = list(CONFIGS) if args.configs == "all" else args.configs.split(",")
        for label in labels:
            if label not in checkpoints:
                epochs = epochs_of.get(label, args.fixed_epochs)
                checkpoints[label] = train(label, Path(args.runs), epochs)
    if args.train_only:
        return
    if args.baseline in checkpoints:  # the baseline first: mCE is relative to the first result
        checkpoints = {args.baseline: checkpoints[args.baseline], **checkpoints}
    corruptions = args.corruptions.split(",") if args.corruptions else None
    earlier: dict[str, dict] = {}
    if args.reuse is not None:
        recorded = json.loads(args.reuse.read_text())
        if recorded.get("limit") == args.limit:
            earlier = recorded["results"]
    load_before = load_average()
    results: dict[str, dict] = {}
    first = None
    for label, path in checkpoints.items():
        start = time.perf_counter()
        measured = Path(earlier[label]["checkpoint"]).resolve() if label in earlier else None
        if measured is not None and measured in (path.resolve(), (path / "best.pt").resolve()):
            result = recorded_result(earlier[label])
        else:
            result = evaluate_robustness(
                path, corruptions=corruptions, resolution=args.resolution, limit=args.limit
            )
        # mCE against the first checkpoint from its numbers (no second evaluation)
        first = first or result
        with_baseline = dataclasses.replace(result, baseline=None if result is first else first)
        results[label] = with_baseline.to_dict()
        results[label]["baseline"] = None if result is first else first.checkpoint
        if measured is not None and result.resolution is None:  # reused: keep what was measured
            results[label]["resolution"] = earlier[label]["resolution"]
            results[label]["reused_from"] = str(args.reuse)
        final = Path(result.checkpoint).parent / "final.json"
        if final.is_file():  # how long the checkpoint trained: steps differ under a time budget
            results[label]["train_steps"] = json.loads(final.read_text()).get("steps")
        print(
            f"{label}: {time.perf_counter() - start:.0f} s, clean {result.clean_top1:.2f}%, "
            f"mean corrupted {result.mean_accuracy:.2f}%",
            flush=True,
        )
    payload = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "threads": 1,
        },
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "limit": args.limit,
        "checkpoints": {k: str(v) for k, v in checkpoints.items()},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(markdown(results))
    print(f"load average {load_before} -> {load_average()}; wrote {args.out}")


if __name__ == "__main__":
    main()
