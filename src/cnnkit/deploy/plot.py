"""The benchmark as a picture: latency per variant, one panel per batch size (Agg canvas)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from cnnkit._io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cnnkit.deploy.bench import BenchResult


def bench_figure(result: BenchResult, threads: int | None = None) -> Figure:
    """Horizontal bars of p50 latency (ms, log scale) per variant, a tick at the minimum;
    one panel per batch size, for one thread count (default: the smallest measured)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = sorted({m.threads for m in result.measurements})
    chosen = threads if threads is not None else (counts[0] if counts else 1)
    rows = [m for m in result.measurements if m.threads == chosen]
    batches = sorted({m.batch_size for m in rows})
    figure = Figure(figsize=(4.2 * max(len(batches), 1), 0.45 * 7 + 1.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, max(len(batches), 1), squeeze=False)[0]
    fastest = {(m.batch_size, m.variant) for m in result.fastest() if m.threads == chosen}
    for ax, batch in zip(axes, batches, strict=False):
        mine = [m for m in rows if m.batch_size == batch]
        labels = [f"{m.variant} ({m.precision})" for m in mine]
        colours = ["tab:green" if (batch, m.variant) in fastest else "tab:blue" for m in mine]
        positions = list(range(len(mine)))
        ax.barh(positions, [m.p50_ms for m in mine], color=colours, label="p50")
        ax.plot([m.min_ms for m in mine], positions, "k|", markersize=14, label="minimum")
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("latency per batch (ms)")
        ax.set_title(f"batch {batch}, {chosen} thread(s)")
    axes[0].legend(loc="lower right", fontsize="small")
    load = ", ".join(f"{v:.1f}" for v in result.load_before)
    figure.suptitle(f"{result.model} {tuple(result.input_shape)}, load {load}")
    figure.tight_layout()
    return figure


def save_bench_figure(result: BenchResult, path: str | Path) -> Path:
    """Write :func:`bench_figure` as a PNG, atomically."""
    buffer = io.BytesIO()
    bench_figure(result).savefig(buffer, format="png", bbox_inches="tight")
    target = Path(path)
    atomic_write_bytes(target, buffer.getvalue())
    return target
