"""Figures: the suffix picks the format (a .svg file is SVG), and no module touches pyplot state."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cnnkit._io import atomic_save_figure, figure_format
from cnnkit.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cnnkit"
MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF", ".svg": b"<?xml"}


def small_figure():
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    figure.subplots().plot([0, 1], [1, 0])
    return figure


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf", ".SVG"])
def test_a_figure_is_written_in_the_format_its_suffix_names(tmp_path, suffix):
    path = tmp_path / f"plot{suffix}"
    atomic_save_figure(small_figure(), path)
    data = path.read_bytes()
    assert data.startswith(MAGIC[suffix.lower()])
    if suffix.lower() == ".svg":
        assert b"<svg" in data[:400]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize("name", ["plot.jpg", "plot", "plot.png.txt"])
def test_a_suffix_that_is_no_figure_format_is_one_line_naming_the_flag(tmp_path, name):
    with pytest.raises(ConfigError, match=r"^--out .*: a figure is written as \.png, \.svg, \.pdf"):
        figure_format(tmp_path / name)
    with pytest.raises(ConfigError):
        atomic_save_figure(small_figure(), tmp_path / name)
    assert not any(tmp_path.iterdir())


def test_no_module_sets_the_matplotlib_backend_or_uses_pyplot():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                module = getattr(node, "module", None) or ""
                if "matplotlib.pyplot" in [*names, module] or (
                    module == "matplotlib" and any(a.name == "pyplot" for a in node.names)
                ):
                    offenders.append(f"{path.name}:{node.lineno} imports pyplot")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "use"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "matplotlib"
            ):
                offenders.append(f"{path.name}:{node.lineno} calls matplotlib.use")
    assert not offenders, offenders
