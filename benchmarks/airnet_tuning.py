"""Fixed-epoch tuning of the airnet recipes: test accuracy of ``best`` with some fields changed.

Each run trains ``best`` for a fixed number of epochs (no time budget, so a busy machine changes
the time, not the accuracy), then evaluates the last weights on the test set three ways: plain,
flip TTA, and flip + 1 px shift TTA (``--tta 2``). One JSON line per run is appended to
benchmarks/results/airnet_tuning.jsonl; docs/benchmarks.md summarises them by hand.

Usage: ``python benchmarks/airnet_tuning.py NAME SEED EPOCHS [field=JSON ...]``, e.g.
``python benchmarks/airnet_tuning.py c8w0 1 4 'model_kwargs={"whitening_components": 8}'
whiten_bias_epochs=0``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cnnkit.train import evaluate, fit
from cnnkit.train.recipes import RECIPES
from fashion_table import machine_info, machine_label  # this script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "airnet_tuning.jsonl"


def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    name, seed, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    changes = {}
    for item in sys.argv[4:]:
        key, _, value = item.partition("=")
        changes[key] = json.loads(value)
    out = Path(tempfile.mkdtemp(prefix="cnnkit-tuning-"))
    config = RECIPES.get("best").replace(
        time_budget=None,
        epochs=epochs,
        seed=seed,
        progress=False,
        plots=False,
        tensorboard=False,
        out_dir=str(out / "run"),
        **changes,
    )
    accuracy = {}
    try:
        started = time.perf_counter()
        result = fit(config)
        wall = time.perf_counter() - started
        # cnnkit's own evaluation of the checkpoint: the run's model, normalisation and precision
        views = (("plain", 0), ("flip", 1), ("flip_shift", 2))  # TTA levels
        # with --ema the same run also gives the weight average's accuracy: a paired comparison
        for weights, prefix in (("model", ""), ("ema", "ema_"))[
            : 2 if config.optimisation.ema else 1
        ]:
            for label, tta in views:
                report = evaluate(out / "run" / "last.pt", tta=tta, hardest=0, weights=weights)
                accuracy[prefix + label] = report.metrics.top1
    finally:
        shutil.rmtree(out, ignore_errors=True)
    row = {
        "name": name,
        "seed": seed,
        "epochs": epochs,
        "changes": changes,
        "wall_seconds": round(wall, 1),
        "images_per_second": result.final["images_per_second"],
        **accuracy,
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{machine_label(machine_info())}, load {os.getloadavg()[0]:.1f} after",
    }
    print(json.dumps(row))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
