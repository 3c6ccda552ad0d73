"""What a run reports while it trains: console lines, a progress bar, metrics.csv, TensorBoard.

One row per epoch goes to ``metrics.csv`` (rewritten atomically each epoch, so a crash never
leaves half a row), to TensorBoard when it is installed, and to the console as one line. On a
terminal a rich progress bar shows the epoch's batches, images/s and the running loss; it is
transient, so what stays on screen (and what a pipe or a log file receives) are the epoch lines.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path
from typing import Any

from cnnkit._io import atomic_write_text

COLUMNS = (
    "epoch",
    "steps",
    "lr",
    "train_loss",
    "train_top1",
    "val_loss",
    "val_top1",
    "val_top5",
    "images_per_second",
    "epoch_seconds",
    "elapsed_seconds",
    "epoch_fraction",  # 1 for a whole epoch; less for the last one a time budget cut short
)


def csv_text(history: list[dict[str, Any]]) -> str:
    """``metrics.csv``: a header of :data:`COLUMNS` and one row per epoch (empty = not measured)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in COLUMNS})
    return buffer.getvalue()


def format_epoch(row: dict[str, Any], epochs: int, budget: float | None = None) -> str:
    """``epoch  3/10  lr 0.0812  train 0.512 81.2%  val 0.401 85.6%  4210 img/s  13.1 s``.

    Under a time budget the epoch count is only a bound, so the line shows the time used
    instead: ``epoch 3  ...  13.1 s  (39/42 s)``.
    """
    if budget is None:
        width = len(str(epochs))
        parts = [f"epoch {row['epoch']:>{width}}/{epochs}"]
    else:
        parts = [f"epoch {row['epoch']}"]
    parts.append(f"lr {row['lr']:.4g}")
    parts.append(f"train {row['train_loss']:.3f} {row['train_top1']:5.2f}%")
    if row.get("val_top1") is not None:
        parts.append(f"val {row['val_loss']:.3f} {row['val_top1']:5.2f}%")
    parts.append(f"{row['images_per_second']:.0f} img/s")
    parts.append(f"{row['epoch_seconds']:.1f} s")
    fraction = row.get("epoch_fraction", 1.0)
    if fraction < 1.0:
        parts.append(f"[{fraction:.0%} of the epoch]")
    if budget is not None:
        parts.append(f"({row['elapsed_seconds']:.0f}/{budget:g} s)")
    return "  ".join(parts)


class RunLog:
    """Console, progress bar, metrics.csv and TensorBoard for one run.

    Only the main process of a distributed run (``main``) logs; the others' log is silent.
    """

    def __init__(
        self,
        out_dir: Path,
        epochs: int,
        *,
        progress: bool,
        tensorboard: bool,
        budget: float | None = None,
        main: bool = True,
    ) -> None:
        from rich.console import Console

        self.main = main
        self.out_dir = out_dir
        self.epochs = epochs
        self.budget = budget
        self.console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        self.show_bar = main and progress and self.console.is_terminal
        self._bar: Any = None
        self._task: Any = None
        self._writer: Any = None
        if tensorboard and main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is an optional extra
                pass
            else:
                self._writer = SummaryWriter(log_dir=str(out_dir / "tensorboard"))

    def print(self, text: str) -> None:
        if self.main:
            self.console.print(text, markup=False)

    def start_epoch(self, epoch: int, batches: int) -> None:
        if not self.show_bar:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        if self._bar is None:
            self._bar = Progress(
                TextColumn("epoch {task.fields[epoch]}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[rate]:>6.0f} img/s  loss {task.fields[loss]:.3f}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bar.start()
        label = f"{epoch}/{self.epochs}" if self.budget is None else str(epoch)
        self._task = self._bar.add_task("train", total=batches, epoch=label, rate=0.0, loss=0.0)

    def advance(self, images_per_second: float, loss: float) -> None:
        if self._bar is not None and self._task is not None:
            shown = loss if math.isfinite(loss) else float("nan")
            self._bar.update(self._task, advance=1, rate=images_per_second, loss=shown)

    def end_epoch(self, history: list[dict[str, Any]]) -> None:
        row = history[-1]
        if self._bar is not None and self._task is not None:
            self._bar.remove_task(self._task)
            self._task = None
        if not self.main:
            return
        self.print(format_epoch(row, self.epochs, self.budget))
        atomic_write_text(self.out_dir / "metrics.csv", csv_text(history))
        if self._writer is not None:
            for key in COLUMNS[2:]:
                if row.get(key) is not None:
                    self._writer.add_scalar(key.replace("_", "/", 1), row[key], row["epoch"])
            self._writer.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
