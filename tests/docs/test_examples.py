"""Every example in README.md and docs/*.md runs and prints what the page says it prints.

Two kinds of fenced blocks are executed:

- ```console blocks: lines starting with ``$ `` are commands; the lines after a command, up to
  the next ``$ ``, are its expected output (stdout and stderr together). A last expected line
  ``[exit N]`` states a non-zero exit. ``cnnkit ...`` runs in this process through
  ``cnnkit.cli.main.main(argv)`` (no torch import per command), in the example's folder, with
  the environment a terminal user of the docs has (``COLUMNS=100``, ``NO_COLOR=1``, one torch
  thread), and with torch's global state (threads, RNG, determinism, grad mode) put back
  afterwards; ``python ...`` runs as a subprocess. ``CNNKIT_DOCS_SUBPROCESS=1`` runs every
  ``cnnkit`` command as ``python -m cnnkit`` instead; :func:`test_cli_as_a_process` keeps a few
  such runs in every test session.
- ```pycon blocks: doctest syntax (``>>>`` / ``...``), run in one namespace per block.

Comparison uses doctest's ELLIPSIS and NORMALIZE_WHITESPACE: ``...`` in expected output matches
anything (for timings). A block preceded by ``<!-- no-test -->`` is not run (e.g. ``make demo``).
"""

from __future__ import annotations

import contextlib
import doctest
import os
import random
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
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


ENV = {"COLUMNS": "100", "NO_COLOR": "1", "CNNKIT_DOCS": "1", "OMP_NUM_THREADS": "1"}
IN_PROCESS = not os.environ.get("CNNKIT_DOCS_SUBPROCESS")


@contextlib.contextmanager
def torch_state_restored() -> Iterator[None]:
    """Whatever a command changes of torch's process-wide state is put back: threads, RNG,
    deterministic algorithms, grad mode, default dtype."""
    import torch

    threads, grad = torch.get_num_threads(), torch.is_grad_enabled()
    deterministic, dtype = torch.are_deterministic_algorithms_enabled(), torch.get_default_dtype()
    python_random = random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.set_num_threads(1)  # what OMP_NUM_THREADS=1 gives a fresh process
            yield
    finally:
        torch.set_num_threads(threads)
        torch.set_grad_enabled(grad)
        torch.use_deterministic_algorithms(deterministic)
        torch.set_default_dtype(dtype)
        random.setstate(python_random)


def run_in_process(
    argv: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> tuple[int, str]:
    """``cnnkit ARGV`` through the CLI's ``main`` in ``cwd``: (exit code, stdout + stderr)."""
    from cnnkit.cli.main import main

    with monkeypatch.context() as patch, torch_state_restored():
        for name, value in ENV.items():
            patch.setenv(name, value)
        patch.chdir(cwd)
        patch.setattr(sys, "argv", ["cnnkit", *argv])
        patch.syspath_prepend(str(cwd))  # `python -m` puts the folder first: --model mypkg.x:y
        modules = set(sys.modules)
        capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse: --help, usage errors
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            for name in set(sys.modules) - modules:  # the example's own code, imported from cwd
                module_file = getattr(sys.modules[name], "__file__", None) or ""
                if module_file.startswith(str(cwd)):
                    del sys.modules[name]
        captured = capsys.readouterr()
    return code, captured.out + captured.err


def run_process(argv: list[str], cwd: Path) -> tuple[int, str]:
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env={**os.environ, **ENV})
    return proc.returncode, proc.stdout + proc.stderr


def run_command(
    command: str, cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> tuple[int, str]:
    argv = shlex.split(command)
    if argv[0] == "cnnkit" and IN_PROCESS:
        return run_in_process(argv[1:], cwd, monkeypatch, capsys)
    if argv[0] == "cnnkit":
        argv = [sys.executable, "-m", "cnnkit", *argv[1:]]
    elif argv[0] == "python":  # the project's Python (with Pillow, torch), not the system's
        argv = [sys.executable, *argv[1:]]
    return run_process(argv, cwd)


def run_console(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    checker = doctest.OutputChecker()
    for command, expected in split_console(block.text):
        code, got = run_command(command, tmp_path, monkeypatch, capsys)
        want_code = 0
        lines = expected.rstrip("\n").splitlines()
        if lines and re.fullmatch(r"\[exit \d+\]", lines[-1].strip()):
            want_code = int(lines[-1].strip()[6:-1])
            expected = "\n".join(lines[:-1]) + "\n"
        assert code == want_code, f"{block.id}: `{command}` exited {code}\n{got}"
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
def test_documented_example(block: Block, tmp_path: Path, monkeypatch, capfd) -> None:
    failures.clear()
    if block.kind == "console":  # capfd: also what worker processes (--nproc) print
        run_console(block, tmp_path, monkeypatch, capfd)
    else:
        run_pycon(block, tmp_path)


def test_cli_as_a_process(tmp_path: Path, monkeypatch, capsys) -> None:
    """What the in-process runs cannot show: ``python -m cnnkit`` itself starts, prints the same
    help, fails with one line and exit 2, and trains a run to its files."""
    command = [sys.executable, "-m", "cnnkit"]
    assert run_process([*command, "--help"], tmp_path) == run_in_process(
        ["--help"], tmp_path, monkeypatch, capsys
    )
    code, got = run_process([*command, "zoo", "no_such_model"], tmp_path)
    assert code == 2 and got.startswith("cnnkit: error: ") and got.count("\n") == 1
    train = "train --recipe lenet5 --train-subset 1000 --epochs 1 --out run --no-tensorboard"
    code, got = run_process([*command, *train.split(), "--no-plots", "--no-report"], tmp_path)
    assert code == 0, got
    assert "test: top-1" in got and (tmp_path / "run" / "final.json").exists()
