"""Renderers of a :class:`~cnnkit.doctor.findings.Report`: a text table, JSON and SARIF 2.1.0.

Renderers only format; every number is in the findings already.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnkit.doctor.findings import Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def render_table(report: Report) -> str:
    """One block per finding (severity, rule, where; message; fix) and a one-line total."""
    shape = "x".join(str(v) for v in report.input_shape)
    lines = [f"cnnkit doctor: {report.model} at {shape}"]
    for finding in report.findings:
        lines.append(f"{finding.severity:<8}{finding.rule}  {finding.where}")
        lines.append(f"        {finding.message}")
        lines.append(f"        fix: {finding.fix}")
    counts = ", ".join(
        f"{report.count(s)} {s}{'s' if report.count(s) != 1 else ''}"
        for s in ("error", "warning", "info")
    )
    lines.append(f"{counts}; {len(report.checked)} rules checked")
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    """``{"model", "input_shape", "findings": [...], "checked": [...]}``."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_sarif(report: Report) -> str:
    """SARIF 2.1.0 (OASIS): one run, the rules that ran as ``tool.driver.rules``, one result per
    finding with a logical location (the layer or field) and, when the model's class has a
    source file, a physical location on it, so code-scanning tools can show it."""
    from cnnkit.doctor.checks import CHECKS

    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for rule_id in report.checked:
        item = CHECKS.get(rule_id)
        index[rule_id] = len(rules)
        rules.append(
            {
                "id": rule_id,
                "shortDescription": {"text": item.checks},
                "help": {"text": item.fix},
                "defaultConfiguration": {"level": _SARIF_LEVEL[item.severity]},
                "properties": {"evidence": item.kind, "source": item.source},
            }
        )
    results = []
    for finding in report.findings:
        location: dict[str, object] = {
            "logicalLocations": [{"fullyQualifiedName": finding.where, "kind": "member"}]
        }
        if report.model_file:
            location["physicalLocation"] = {
                "artifactLocation": {"uri": Path(report.model_file).resolve().as_uri()}
            }
        result: dict[str, Any] = {
            "ruleId": finding.rule,
            "level": _SARIF_LEVEL[finding.severity],
            "message": {"text": f"{finding.where}: {finding.message} Fix: {finding.fix}"},
            "locations": [location],
        }
        if finding.rule in index:
            result["ruleIndex"] = index[finding.rule]
        results.append(result)
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "cnnkit doctor",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {
    "table": render_table,
    "json": render_json,
    "sarif": render_sarif,
}


def render_rule_table() -> str:
    """The Markdown rule table of docs/doctor.md, from the registry (a test keeps them equal)."""
    from cnnkit.doctor.examine import rule_table

    lines = [
        "| id | severity | evidence | seed source | what it checks | how to fix |",
        "|---|---|---|---|---|---|",
    ]
    for item in rule_table():
        cells = [f"`{item.id}`", item.severity, item.kind, item.source, item.checks, item.fix]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
