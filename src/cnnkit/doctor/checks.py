"""The rule table: every doctor rule registered by id in one :class:`~cnnkit._registry.Registry`.

A rule is a small function ``rule(ctx) -> Iterable[Hit]`` that reads the evidence in a
:class:`~cnnkit.doctor.context.Context`; :func:`check` registers it with its id, default
severity, the evidence it needs (``graph``: the captured DAG, free; ``config``: a
:class:`~cnnkit.train.config.TrainConfig`; ``data``: datasets; ``probe``: a few real
forward/backward steps on a copy), its seed source and its one-line fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

from cnnkit._registry import Registry
from cnnkit.doctor.findings import Severity

if TYPE_CHECKING:
    from cnnkit.doctor.context import Context

Evidence = Literal["graph", "config", "data", "probe"]


class Hit(NamedTuple):
    """What a rule returns for one place; severity and fix default to the rule's."""

    where: str
    message: str
    severity: Severity | None = None
    fix: str | None = None


RuleFunction = Callable[["Context"], Iterable[Hit]]


@dataclass(frozen=True)
class Check:
    """A registered rule and what the doctor needs to know about it."""

    id: str
    severity: Severity
    evidence: tuple[Evidence, ...]
    source: str
    checks: str
    fix: str
    function: RuleFunction

    @property
    def kind(self) -> str:
        """The evidence shown in the rule table: the costliest one it needs."""
        for kind in ("probe", "data", "config"):
            if kind in self.evidence:
                return kind
        return "static"


CHECKS: Registry[Check] = Registry("doctor rule")


def check(
    rule_id: str,
    *,
    severity: Severity,
    evidence: tuple[Evidence, ...] = ("graph",),
    source: str,
    checks: str,
    fix: str,
) -> Callable[[RuleFunction], RuleFunction]:
    """Decorator: register ``function`` as the rule ``rule_id`` in :data:`CHECKS`."""

    def decorator(function: RuleFunction) -> RuleFunction:
        CHECKS.add(rule_id, Check(rule_id, severity, evidence, source, checks, fix, function))
        return function

    return decorator
