"""``cnnkit eval --out DIR``: an evaluation's JSON, per-class CSV and confusion-matrix picture.

Files are named after the split (``eval-test.json``, ``per_class-test.csv``,
``confusion-test.png``), so that ``--out`` may be the run folder itself without replacing the
run's own ``confusion.png``; each is written atomically.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

from cnnkit._io import atomic_write_text
from cnnkit.errors import ConfigError
from cnnkit.train.jsonio import dumps

if TYPE_CHECKING:
    from cnnkit.train.evaluation import EvalResult

PER_CLASS_COLUMNS = ("class", "precision", "recall", "f1", "support", "predicted")


def per_class_csv(result: EvalResult) -> str:
    """One row per class: precision, recall, F1 (percent; empty where undefined), counts."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PER_CLASS_COLUMNS)
    for score in result.metrics.class_scores:
        row = score.to_dict()
        writer.writerow(
            "" if isinstance(row[k], float) and not math.isfinite(row[k]) else row[k]
            for k in PER_CLASS_COLUMNS
        )
    return buffer.getvalue()


def check_out_dir(out_dir: str | Path) -> Path:
    """Refuse an ``--out`` that is an existing file before any work is done."""
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder}: is a file, not a folder")
    return folder


def write_eval_files(result: EvalResult, out_dir: str | Path) -> list[Path]:
    """Write ``eval-<split>.json``, ``per_class-<split>.csv``, ``confusion-<split>.png``."""
    from cnnkit.train.plots import plot_confusion

    folder = check_out_dir(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {folder}: cannot create the folder ({exc.strerror})") from None
    split = result.split
    paths = [
        folder / f"eval-{split}.json",
        folder / f"per_class-{split}.csv",
        folder / f"confusion-{split}.png",
    ]
    try:
        atomic_write_text(paths[0], dumps(result.to_dict()) + "\n")
        atomic_write_text(paths[1], per_class_csv(result))
        metrics = result.metrics
        title = f"confusion matrix ({result.dataset} {split})"
        plot_confusion(metrics.confusion, metrics.classes, paths[2], title=title)
    except PermissionError as exc:
        raise ConfigError(f"--out {folder}: cannot write there ({exc.strerror})") from None
    return paths
