"""What the doctor reports: :class:`Finding` (one problem at one place) and :class:`Report`.

Severities (issue 20): ``error`` = wrong results or a crash ahead, ``warning`` = likely harm,
``info`` = a cheaper or better way. Rendering lives in :mod:`cnnkit.doctor.render`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class Finding:
    """One rule firing at one place.

    Attributes:
        rule: the rule's stable id (``conv-bias-before-bn``).
        severity: ``error``, ``warning`` or ``info``.
        where: a dotted layer name (``layer1.0.conv1``), a config field (``warmup``) or a file.
        message: one line: what and why, with the numbers.
        fix: one line: what to change.
        source: the seed and section the check comes from (``003 Q&A``).
    """

    rule: str
    severity: Severity
    where: str
    message: str
    fix: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    """The result of :func:`cnnkit.doctor.examine`.

    ``checked`` lists the ids of the rules that ran (a rule whose evidence was not given, e.g.
    a data rule without data, is not in it); ``model`` and ``input_shape`` say what was examined.
    """

    model: str
    input_shape: tuple[int, ...]
    findings: tuple[Finding, ...]
    checked: tuple[str, ...]
    model_file: str | None = field(default=None, compare=False)

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def at_least(self, severity: Severity) -> tuple[Finding, ...]:
        """Findings at or above ``severity`` (what ``--fail-on`` compares)."""
        rank = SEVERITY_RANK[severity]
        return tuple(f for f in self.findings if SEVERITY_RANK[f.severity] >= rank)

    def rules_fired(self) -> list[str]:
        return sorted({f.rule for f in self.findings})

    def to_dict(self) -> dict[str, Any]:
        """``{"findings": [...], "checked": [...]}`` plus the model and its input shape."""
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "findings": [f.to_dict() for f in self.findings],
            "checked": list(self.checked),
        }
