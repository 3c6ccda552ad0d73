"""What every benchmark script records besides its figures: the machine's load average, and its
own section of docs/benchmarks.md (replaced in place, the other sections left as they are).

The scripts import it by name (their folder is on ``sys.path`` when run as ``python
benchmarks/NAME.py``; each inserts it for the tests, which load them by path).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, rounded to 0.01 (``None`` where the OS has none):
    figures measured on a shared machine are recorded with it."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def replace_section(page: str, section: str) -> str:
    """``page`` with the section whose heading is ``section``'s first line (up to the next
    ``## `` heading) replaced by ``section``; appended when the page has no such heading."""
    heading = section.split("\n", 1)[0]
    lines = page.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == heading]
    if not starts:
        return page.rstrip("\n") + "\n\n" + section
    start = starts[0]
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


def write_section(title: str, body: str, doc: Path = DOC) -> None:
    """Replace (or append) the ``## {title}`` section of docs/benchmarks.md with ``body``."""
    write_markdown_section(f"## {title}\n\n{body.strip(chr(10))}\n", doc)


def write_markdown_section(section: str, doc: Path = DOC) -> None:
    """Put ``section`` (its first line is its ``## `` heading) into docs/benchmarks.md in place
    of the section of that heading, atomically."""
    sys.path.insert(0, str(ROOT / "src"))
    from cnnkit._io import atomic_write_text

    page = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    atomic_write_text(doc, replace_section(page, section))
