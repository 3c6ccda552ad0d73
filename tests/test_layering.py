"""The import graph follows docs/architecture.md: an allow-list of which folder may import which.

A folder (or top-level module) of ``cnnkit`` may import only the cnnkit folders listed for it, at
module level or inside functions. A new folder must be added here before it can import anything,
so the layering is decided once, in this table, not discovered later.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cnnkit"

# Importable by every folder: the error tree, the one Registry, atomic file writes.
BASE = {"errors", "_registry", "_io", "_text"}

# folder -> the cnnkit folders it may import besides BASE (and itself)
ALLOWED: dict[str, set[str]] = {
    "arith": set(),
    "runtime": set(),
    "nn": {"arith"},
    "reference": {"arith"},
    "models": {"nn", "arith", "data"},  # data: pretrained weights reuse its verified download
    "data": {"arith"},
    "analysis": {"arith", "models"},
    "lab": {"arith", "reference", "nn", "models", "analysis", "runtime"},
    "explain": {"analysis", "models", "nn", "arith", "runtime", "data"},
    "deploy": {"analysis", "models", "nn", "arith", "runtime", "data"},
    "train": {"models", "data", "analysis", "nn", "arith", "runtime", "explain"},
    "doctor": {"analysis", "models", "nn", "arith", "runtime", "data", "train"},
    "report": {"train", "explain", "analysis", "models", "data", "runtime", "arith"},
    "cli": {
        "analysis",
        "arith",
        "data",
        "deploy",
        "doctor",
        "explain",
        "lab",
        "models",
        "nn",
        "reference",
        "report",
        "runtime",
        "train",
    },
    "__init__": set(),
    "__main__": {"cli"},
}


def _folder_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


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


def test_every_folder_is_in_the_allow_list():
    folders = {_folder_of(p) for p in PACKAGE.rglob("*.py")}
    unlisted = sorted(folders - set(ALLOWED) - BASE)
    assert not unlisted, f"add these folders to ALLOWED in tests/test_layering.py: {unlisted}"


def test_imports_follow_the_allow_list():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        folder = _folder_of(path)
        allowed = ALLOWED.get(folder, set()) | BASE | {folder}
        bad = imported_folders(path) - allowed
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
