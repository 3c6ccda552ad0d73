"""Every example in README.md and docs/*.md runs and prints what the page says it prints.

Two kinds of fenced blocks are executed:

- ```console blocks: lines starting with ``$ `` are commands (``cnnkit ...`` runs as
  ``python -m cnnkit ...``); the lines after a command, up to the next ``$ ``, are its expected
  output (stdout and stderr together). A last expected line ``[exit N]`` states a non-zero exit.
- ```pycon blocks: doctest syntax (``>>>`` / ``...``), run in one namespace per block.

Comparison uses doctest's ELLIPSIS and NORMALIZE_WHITESPACE: ``...`` in expected output matches
anything (for timings). A block preceded by ``<!-- no-test -->`` is not run (e.g. ``make demo``).
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(<!-- no-test -->\s*\n)?```(console|pycon)\n(.*?)```", re.S)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass
class Block:
    page: Path
    line: int
    kind: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.page.name}:{self.line}"


def collect() -> list[Block]:
    blocks = []
    for page in PAGES:
        if not page.exists():
            continue
        source = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(source):
            if match.group(1):
                continue
            line = source.count("\n", 0, match.start(2)) + 1
            blocks.append(Block(page, line, match.group(2), match.group(3)))
    return blocks


def split_console(text: str) -> list[tuple[str, str]]:
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return [(cmd, "\n".join(out).strip("\n") + "\n") for cmd, out in steps]


def run_console(block: Block, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "COLUMNS": "100",
        "NO_COLOR": "1",
        "CNNKIT_DOCS": "1",
        "OMP_NUM_THREADS": "1",
    }
    checker = doctest.OutputChecker()
    for command, expected in split_console(block.text):
        argv = shlex.split(command)
        if argv[0] == "cnnkit":
            argv = [sys.executable, "-m", "cnnkit", *argv[1:]]
        elif argv[0] == "python":  # the project's Python (with Pillow, torch), not the system's
            argv = [sys.executable, *argv[1:]]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=env)
        got = proc.stdout + proc.stderr
        want_code = 0
        lines = expected.rstrip("\n").splitlines()
        if lines and re.fullmatch(r"\[exit \d+\]", lines[-1].strip()):
            want_code = int(lines[-1].strip()[6:-1])
            expected = "\n".join(lines[:-1]) + "\n"
        assert proc.returncode == want_code, (
            f"{block.id}: `{command}` exited {proc.returncode}\n{got}"
        )
        if not checker.check_output(expected, got, FLAGS):
            diff = checker.output_difference(doctest.Example(command, expected), got, FLAGS)
            pytest.fail(f"{block.id}: `{command}` printed something else\n{diff}")


def run_pycon(block: Block, tmp_path: Path) -> None:
    parser = doctest.DocTestParser()
    test = parser.get_doctest(block.text, {}, block.id, str(block.page), block.line)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = runner.run(test, out=lambda s: failures.append(s))
    finally:
        os.chdir(cwd)
    assert result.failed == 0, "".join(failures)


failures: list[str] = []


@pytest.mark.parametrize("block", collect(), ids=lambda b: b.id)
def test_documented_example(block: Block, tmp_path: Path) -> None:
    failures.clear()
    if block.kind == "console":
        run_console(block, tmp_path)
    else:
        run_pycon(block, tmp_path)
