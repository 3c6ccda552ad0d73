"""Calibration of the corruptions' severity table (issue 21, E5; docs/robustness.md, table v2).

For each corruption, sweeps its parameter over a grid from mild to strong and measures the top-1
of one checkpoint on the first ``--limit`` test images at every value, exactly as
``cnnkit robustness`` measures (the run's model, normalisation, precision and TTA; each image
corrupted with the seed of its index), and the mean PSNR of the corrupted images to the clean
ones. A severity table is then read off the curve: the five values whose accuracy drops come
closest to the targets ``--targets`` (points of top-1 lost at severities 1-5), keeping the
parameters ordered.

Writes ``benchmarks/results/robustness_calibration.json`` (every sweep point, the suggested
levels, the machine, its load average and the command) and prints a markdown table.

    # what table v2 was calibrated with (a `cnnkit train --recipe fast` run, first 2,000 images):
    python benchmarks/robustness_calibration.py --checkpoint /tmp/i21p-fast --limit 2000 \\
        --corruptions pixelate,resample,jpeg
    # every corruption:
    python benchmarks/robustness_calibration.py --checkpoint RUN --limit 10000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "robustness_calibration.json"

# parameter grids, from mild to strong (the corruption's own parameter: docs/robustness.md)
GRIDS: dict[str, list[float]] = {
    "brightness": [0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4],
    "contrast": [0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.3, 0.2],
    "gaussian_noise": [0.03, 0.04, 0.06, 0.08, 0.1, 0.11, 0.12, 0.13, 0.14, 0.16, 0.22, 0.3],
    "shot_noise": [200.0, 100.0, 50.0, 25.0, 12.0, 6.0],
    "gaussian_blur": [0.5, 0.6, 0.7, 0.75, 0.85, 1.0, 1.1, 1.25, 1.5, 2.0],
    "motion_blur": [1.0, 1.5, 2.0, 2.5, 3.0, 4.0],
    "rotation": [6.0, 12.0, 15.0, 18.0, 20.0, 22.0, 24.0, 30.0, 40.0],
    "translation": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    "scale": [0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.5],
    "elastic": [8.0, 16.0, 24.0, 32.0, 40.0, 50.0],
    # table v2's definition: size factor (pixelate_area)
    "pixelate": [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.64, 0.6, 0.54, 0.5, 0.46, 0.43, 0.4, 0.36, 0.3],
    "resample": [0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3],
    "jpeg": [50.0, 30.0, 20.0, 12.0, 7.0, 5.0, 4.0, 3.0, 2.0, 1.0],
}
TARGETS = (2.0, 6.0, 12.0, 20.0, 30.0)  # points of top-1 lost at severities 1-5 (a gradual fall)


def _load() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def sweep(
    checkpoint: str,
    names: list[str],
    limit: int,
    seed: int,
    batch_size: int,
    reuse: dict[str, list[dict[str, float]]] | None = None,
) -> dict:
    """{name: [{"level", "top1", "psnr"}, ...]} and the clean top-1; points found in ``reuse``
    (an earlier run's sweeps, same checkpoint, images and seed) are taken from it."""
    from cnnkit.data.corruptions import CORRUPTIONS, image_seeds
    from cnnkit.train.robustness import _setup, _top1

    setup = _setup(checkpoint, None, "cpu", "model", limit)
    clean_images = setup.dataset.images.to(torch.float32) / 255.0

    def batches(corrupted: torch.Tensor):
        labels = setup.dataset.labels
        for start in range(0, corrupted.shape[0], batch_size):
            batch = (corrupted[start : start + batch_size] - setup.mean) / setup.std
            if setup.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            yield batch, labels[start : start + batch_size]

    clean = _top1(setup, batches(clean_images))
    result: dict[str, list[dict[str, float]]] = {}
    indices = torch.arange(clean_images.shape[0])
    for name in names:
        apply = CORRUPTIONS.get(name).applier(2)  # table v2's definition of the corruption
        seeds = image_seeds(indices, seed, name)
        rows = []
        known = {row["level"]: row for row in (reuse or {}).get(name, [])}
        for level in GRIDS[name]:
            if level in known:
                rows.append(known[level])
                continue
            corrupted = apply(clean_images, level, seeds).clamp(0, 1)
            mse = float(((corrupted.double() - clean_images.double()) ** 2).mean())
            top1 = _top1(setup, batches(corrupted))
            rows.append({"level": level, "top1": top1, "psnr": 10 * math.log10(1 / mse)})
            drop = clean - top1
            print(f"{name:<15} {level:>7g}  top-1 {top1:6.2f}  drop {drop:6.2f}", flush=True)
        result[name] = rows
    return {"clean_top1": clean, "sweeps": result}


def suggest(rows: list[dict[str, float]], clean: float, targets=TARGETS) -> list[float]:
    """Per target drop, the grid value whose drop is closest, moving only towards stronger."""
    chosen, start = [], 0
    for target in targets:
        best = min(range(start, len(rows)), key=lambda i: abs(clean - rows[i]["top1"] - target))
        chosen.append(rows[best]["level"])
        start = min(best + 1, len(rows) - 1)
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a cnnkit run or checkpoint")
    parser.add_argument("--corruptions", default=",".join(GRIDS), help="comma-separated names")
    parser.add_argument("--limit", type=int, default=2000, help="first N test images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--out", default=str(RESULT), help="the JSON file written")
    parser.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="JSON",
        help="an earlier output (same checkpoint, --limit, --seed): its points are not measured "
        "again (repeatable)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT / "src"))
    names = [n.strip() for n in args.corruptions.split(",") if n.strip()]
    load_before, start = _load(), time.perf_counter()
    reuse: dict[str, list[dict[str, float]]] = {}
    for earlier in args.reuse:
        for name, rows in json.loads(Path(earlier).read_text())["sweeps"].items():
            reuse.setdefault(name, []).extend(rows)
    measured = sweep(args.checkpoint, names, args.limit, args.seed, args.batch_size, reuse)
    clean = measured["clean_top1"]
    suggested = {name: suggest(rows, clean) for name, rows in measured["sweeps"].items()}
    record = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "checkpoint": args.checkpoint,
        "images": args.limit,
        "seed": args.seed,
        "targets": list(TARGETS),
        **measured,
        "suggested_levels": suggested,
        "seconds": time.perf_counter() - start,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "threads": 1,
        },
        "load_average": {"before": load_before, "after": _load()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nclean top-1 {clean:.2f}% on {args.limit} images; written {out}")
    print("| corruption | value: points of top-1 lost ... | suggested levels |")
    print("|---|---|---|")
    for name, rows in measured["sweeps"].items():
        curve = ", ".join(f"{r['level']:g}: {clean - r['top1']:.1f}" for r in rows)
        print(f"| `{name}` | {curve} | {', '.join(f'{v:g}' for v in suggested[name])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
