"""The model doctor (capability H1): the seeds' checklists as automatic checks on a model, its
data and its training config.

``examine(model, input_shape, data=..., config=..., probe_steps=N) -> Report``; each rule is a
small function registered by id in :data:`CHECKS` (see :mod:`cnnkit.doctor.checks`) with the
evidence it needs: the captured graph (static, free), a config, data, or a short probe.
"""

from __future__ import annotations

from cnnkit.doctor.checks import CHECKS, Check, Hit, check
from cnnkit.doctor.context import Context, DataEvidence
from cnnkit.doctor.examine import examine, rule_table
from cnnkit.doctor.findings import Finding, Report

__all__ = [
    "CHECKS",
    "Check",
    "Context",
    "DataEvidence",
    "Finding",
    "Hit",
    "Report",
    "check",
    "examine",
    "rule_table",
]
