"""Data-parallel training (E7): 1 process x T threads against N processes x T/N threads.

Each variant is the user's own command, ``python -m cnnkit train ...`` in a fresh process
(``--nproc N`` starts the processes through torch's elastic launcher), on real Fashion-MNIST,
with the same global batch, seed and schedule; the variants of one model run interleaved,
``--rounds`` times (median). Measured: training images/s (final.json: images over the seconds
inside training steps, all ranks' images), the wall-clock seconds of the whole command (process
start, rendezvous, data loading and the test evaluation included), and the seconds of training
until validation top-1 first reached ``--target`` (metrics.csv's elapsed_seconds; null when it
was not reached).

Smoke configuration (a loaded 2-core machine): ``python benchmarks/distributed.py``. Fuller:
``python benchmarks/distributed.py --images 54000 --epochs 10 --rounds 3``. On a GPU machine
(NCCL, one process per GPU): ``python benchmarks/distributed.py --device cuda --procs 1 2 4
--threads 4 --images 54000 --epochs 10``. Writes benchmarks/results/distributed.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "airnet": ["--model", "airnet"],
    "resnet18": ["--model", "resnet18", "--model-kwargs", '{"small_input": true}'],
}


def run_variant(model: str, procs: int, threads: int, args: argparse.Namespace) -> dict:
    """One ``cnnkit train`` command; its images/s, wall seconds and time to ``--target``."""
    images = args.images if model == "airnet" else max(args.images // 4, 4 * args.batch_size)
    with tempfile.TemporaryDirectory(prefix="cnnkit-dist-bench-") as folder:
        out = Path(folder) / "run"
        argv = [
            sys.executable, "-m", "cnnkit", "train", *MODELS[model],
            "--train-subset", str(images), "--val-size", str(args.val_size),
            "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
            "--device", args.device, "--threads", str(threads), "--nproc", str(procs),
            "--seed", "0", "--out", str(out), "--no-plots", "--no-tensorboard", "--no-report",
            "--no-progress", "--no-doctor", "--hardest", "0", "--time-budget", "none",
        ]  # fmt: skip
        environment = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
        started = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=environment, check=False)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr}")
        final = json.loads((out / "final.json").read_text())
        with open(out / "metrics.csv", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    curve = [(float(r["elapsed_seconds"]), float(r["val_top1"])) for r in rows]
    reached = [seconds for seconds, top1 in curve if top1 >= args.target]
    return {
        "images_per_second": final["images_per_second"],
        "wall_seconds": wall,
        "seconds_to_target": reached[0] if reached else None,
        "curve": curve,  # (training seconds, val top-1) per epoch: other targets afterwards
        "test_top1": final["test_top1"],
        "train_images": images,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--images", type=int, default=2048, help="training images (airnet)")
    parser.add_argument("--val-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256, help="the global batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="threads of the 1-process run")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2], help="process counts")
    parser.add_argument("--target", type=float, default=55.0, help="val top-1 %% to reach")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "distributed.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = []
    for model in args.models:
        samples: dict[int, list[dict]] = {procs: [] for procs in args.procs}
        for _round in range(args.rounds):
            for procs in args.procs:
                threads = max(1, args.threads // procs) if args.device == "cpu" else args.threads
                sample = run_variant(model, procs, threads, args)
                sample["threads_per_process"] = threads
                samples[procs].append(sample)
                print(model, procs, json.dumps(sample), flush=True)
        for procs, runs in samples.items():
            reached = [r["seconds_to_target"] for r in runs if r["seconds_to_target"] is not None]
            rows.append(
                {
                    "model": model,
                    "processes": procs,
                    "threads_per_process": runs[0]["threads_per_process"],
                    "images_per_second": statistics.median(r["images_per_second"] for r in runs),
                    "wall_seconds": statistics.median(r["wall_seconds"] for r in runs),
                    "seconds_to_target": statistics.median(reached) if reached else None,
                    "test_top1": statistics.median(r["test_top1"] for r in runs),
                    "train_images": runs[0]["train_images"],
                    "samples": runs,
                }
            )
    result = {
        "benchmark": "distributed",
        "settings": vars(args),
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
            "python": platform.python_version(),
        },
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
