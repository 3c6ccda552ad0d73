"""Learning-rate schedules as plain functions of training progress (nanoGPT's ``get_lr``).

``progress`` is the fraction of training done, in [0, 1]: ``step / total_steps`` for a run of fixed
length, ``epoch / schedule_epochs`` when the rate is held within an epoch (a torch scheduler
stepped once per epoch, as seed 003 does), or ``elapsed / time_budget`` when a time budget is
set, whichever is further along. Because the schedule reads elapsed time, a budgeted run still
anneals to its final rate when the time is up instead of stopping at a high rate.
"""

from __future__ import annotations

import math

ONECYCLE_DIV_FACTOR = 25.0  # torch.optim.lr_scheduler.OneCycleLR's defaults
ONECYCLE_FINAL_DIV_FACTOR = 1e4


def cosine(progress: float, start: float, end: float) -> float:
    """``end + (start - end) * (1 + cos(pi * progress)) / 2`` (CosineAnnealingLR's closed form)."""
    return end + (start - end) * (1.0 + math.cos(math.pi * progress)) / 2.0


def linear(progress: float, start: float, end: float) -> float:
    """``start + (end - start) * progress``."""
    return start + (end - start) * progress


def learning_rate(
    progress: float,
    *,
    peak: float,
    schedule: str = "cosine",
    warmup: float = 0.0,
    final: float = 0.0,
) -> float:
    """The learning rate at ``progress`` in [0, 1] (values past 1 are clamped).

    Args:
        progress: fraction of training done.
        peak: the rate after warm-up (``--lr``).
        schedule: ``cosine`` (to ``final``), ``linear`` (to ``final``), ``constant``, or
            ``onecycle``: torch's OneCycleLR shape, cosine from ``peak/25`` up to ``peak`` over
            the ``warmup`` fraction, then cosine down to ``peak/25/1e4``.
        warmup: fraction of training spent warming up; linear from 0 for the other schedules.
        final: the rate at the end of ``cosine`` and ``linear``.
    """
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "onecycle":
        start = peak / ONECYCLE_DIV_FACTOR
        end = start / ONECYCLE_FINAL_DIV_FACTOR
        if warmup > 0.0 and progress < warmup:
            return cosine(progress / warmup, start, peak)
        rest = (progress - warmup) / (1.0 - warmup) if warmup < 1.0 else 1.0
        return cosine(rest, peak, end)
    if warmup > 0.0 and progress < warmup:
        return peak * progress / warmup
    rest = (progress - warmup) / (1.0 - warmup) if warmup < 1.0 else 1.0
    if schedule == "cosine":
        return cosine(rest, peak, final)
    if schedule == "linear":
        return linear(rest, peak, final)
    if schedule == "constant":
        return peak
    raise ValueError(f"unknown schedule {schedule!r}")
