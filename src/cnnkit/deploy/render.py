"""Text and rich renderings of deployment results (no computation here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from cnnkit.deploy.bench import BenchResult
    from cnnkit.deploy.fold import FoldResult


def fold_text(result: FoldResult, sizes: dict[str, tuple[int, int]] | None = None) -> str:
    """Folded pairs, skipped BNs with their reasons, the float64 check, and (``sizes``:
    ``{"params": (before, after), "macs": (before, after)}``) the summary figures."""
    lines = [
        f"folded {len(result.folded)} of {result.batch_norms} batch norms; "
        f"max |folded - original| = {result.max_error:.2e} (float64, eval mode)"
    ]
    for first, second in result.folded:
        lines.append(f"  folded   {first} + {second}")
    for skip in result.skipped:
        lines.append(f"  skipped  {skip.name}: {skip.reason}")
    for key, (before, after) in (sizes or {}).items():
        lines.append(f"{key}: {before:,} -> {after:,}")
    return "\n".join(lines)


def bench_table(result: BenchResult) -> Table:
    """One row per measurement; the fastest per (batch, threads) in bold."""
    from rich.table import Table

    fastest = {(m.batch_size, m.threads, m.variant) for m in result.fastest()}
    load = ", ".join(f"{v:.2f}" for v in result.load_before)
    after = ", ".join(f"{v:.2f}" for v in result.load_after)
    table = Table(
        title=f"{result.model} {tuple(result.input_shape)} on {result.machine.get('cpu')} "
        f"({result.machine.get('cores')} cores; load {load} -> {after})"
    )
    for column in ("variant", "precision", "batch", "threads", "p50 ms", "p90 ms", "p99 ms",
                   "min ms", "img/s"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("variant", "precision") else "right")
    for m in result.measurements:
        style = "bold green" if (m.batch_size, m.threads, m.variant) in fastest else None
        table.add_row(
            m.variant, m.precision, str(m.batch_size), str(m.threads), f"{m.p50_ms:.3f}",
            f"{m.p90_ms:.3f}", f"{m.p99_ms:.3f}", f"{m.min_ms:.3f}", f"{m.throughput:,.0f}",
            style=style,
        )  # fmt: skip
    return table


def bench_footer(result: BenchResult) -> str:
    """The fastest variant per batch size and threads, preparation costs, skips and notes."""
    lines = ["fastest:"]
    for m in result.fastest():
        lines.append(
            f"  batch {m.batch_size}, {m.threads} thread(s): {m.variant} ({m.precision}) "
            f"{m.p50_ms:.3f} ms p50, {m.throughput:,.0f} img/s"
        )
    for name, seconds in result.setup_seconds.items():
        if seconds:
            lines.append(f"setup {name}: {seconds:.1f} s")
    for name, reason in result.skipped.items():
        lines.append(f"skipped {name}: {reason}")
    for name, note in result.notes.items():
        lines.append(f"note {name}: {note}")
    return "\n".join(lines)
