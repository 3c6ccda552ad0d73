"""Analysis rules: one small function per aten op (or module class), grouped by op family.

``RULES`` is the registry; importing this package registers every family explicitly.
``register_rule`` adds a rule (users and plug-ins); ``summarize(..., rules={op: rule})``
overrides one for a single call.
"""

from __future__ import annotations

from cnnkit.analysis.rules import (  # noqa: F401  (imported for registration)
    attention,
    conv,
    creation,
    elementwise,
    matmul,
    norm,
    pool,
    shape,
    upsample,
)
from cnnkit.analysis.rules._base import (
    RULES,
    OpFigures,
    Rule,
    find_rule,
    numel,
    register_rule,
    rule_key,
)

__all__ = ["RULES", "OpFigures", "Rule", "find_rule", "numel", "register_rule", "rule_key"]
