"""The import graph follows docs/architecture.md: no folder imports a folder above it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cnnkit"

# folder -> cnnkit folders it must not import (module level or inside functions)
FORBIDDEN: dict[str, set[str]] = {
    "arith": {"analysis", "reference", "lab", "nn", "models", "data", "train", "cli"},
    "nn": {"analysis", "reference", "lab", "models", "data", "train", "cli"},
    "reference": {"analysis", "lab", "nn", "models", "data", "train", "cli"},
    "models": {"analysis", "reference", "lab", "data", "train", "cli"},
    "data": {"analysis", "reference", "lab", "nn", "models", "train", "cli"},
    "analysis": {"reference", "lab", "data", "train", "cli"},
    "lab": {"train", "cli", "data"},
    "train": {"cli", "lab", "reference"},
}


def imported_folders(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    folders = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "cnnkit" and len(parts) > 1:
                folders.add(parts[1])
    return folders


def test_no_upward_imports():
    violations = []
    for folder, forbidden in FORBIDDEN.items():
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            bad = imported_folders(path) & forbidden
            if bad:
                violations.append(f"{path.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert not violations, "\n".join(violations)


def test_arith_does_not_import_torch():
    for path in (PACKAGE / "arith").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                module = getattr(node, "module", None) or ""
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [module]
                assert not any(n.split(".")[0] == "torch" for n in names), path
