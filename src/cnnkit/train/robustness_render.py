"""Text rendering of :class:`cnnkit.train.robustness.RobustnessResult` (``cnnkit robustness``):
the top-1 table, CE/mCE against a baseline, the resolution trade; computes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnkit.train.robustness import RobustnessResult


def render_table(result: RobustnessResult) -> str:
    """Top-1 per corruption (rows) and severity (columns), CE columns with a baseline."""
    ce, relative = result.ce(), result.relative_ce()
    lines = [
        f"{result.checkpoint} on {result.dataset} test ({result.images:,} images"
        f"{', flip TTA' if result.tta else ''}; severity table v{result.table_version}, "
        f"seed {result.seed})",
        f"clean top-1 {result.clean_top1:.2f}%",
        "",
    ]
    width = max(len("corruption"), *(len(name) for name in result.top1))
    header = f"{'corruption':<{width}}" + "".join(f"  {'s' + str(s):>6}" for s in result.severities)
    header += f"  {'mean':>6}"
    if ce is not None:
        header += f"  {'CE':>6}  {'rel CE':>6}"
    lines.append(header)
    for name, row in result.top1.items():
        line = f"{name:<{width}}" + "".join(f"  {v:6.2f}" for v in row)
        line += f"  {sum(row) / len(row):6.2f}"
        if ce is not None and relative is not None:
            line += f"  {ce[name]:6.1f}  {relative[name]:6.1f}"
        lines.append(line)
    lines.append(f"mean top-1 over corruptions and severities: {result.mean_accuracy:.2f}%")
    if result.baseline is not None:
        lines.append(
            f"mCE {result.mce:.1f}%  relative mCE {result.relative_mce:.1f}%  against "
            f"{result.baseline.checkpoint} (clean {result.baseline.clean_top1:.2f}%, mean "
            f"corrupted {result.baseline.mean_accuracy:.2f}%)"
        )
    if result.resolution is not None:
        res = result.resolution
        full = "x".join(map(str, res.full_size))
        small = "x".join(map(str, res.reduced_size))
        lines.append(
            f"resolution x{res.factor:g}: {full} top-1 {res.full_top1:.2f}% at "
            f"{res.full_images_per_second:,.0f} img/s; {small} upsampled to {full} "
            f"{res.upsampled_top1:.2f}%"
        )
        if res.native_top1 is not None and res.native_images_per_second is not None:
            lines.append(
                f"  fed at {small}: top-1 {res.native_top1:.2f}% at "
                f"{res.native_images_per_second:,.0f} img/s "
                f"({res.native_images_per_second / res.full_images_per_second:.2f}x the speed)"
            )
        else:
            lines.append(f"  fed at {small}: not possible for this model ({res.native_error})")
    if result.grid_path:
        lines.append(f"grid: {result.grid_path}")
    return "\n".join(lines)
