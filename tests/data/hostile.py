"""Helpers of the hostile-input tests: what is on disk, and the CLI's one-line refusal."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cnnkit.cli.main import main


def disk_state(*roots: Path) -> dict[str, tuple]:
    """Every entry under ``roots``: kind, size, mtime and (regular files) content digest.

    Entries are never opened unless regular (a FIFO would block), links are not followed."""
    state: dict[str, tuple] = {}
    for root in roots:
        if not os.path.lexists(root):
            continue
        for directory, subdirs, names in os.walk(root):
            for name in [*subdirs, *names]:
                path = Path(directory) / name
                info = path.lstat()
                digest = None
                if stat.S_ISREG(info.st_mode):
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                state[str(path)] = (stat.S_IFMT(info.st_mode), info.st_size, info.st_mtime_ns,
                                    digest)  # fmt: skip
    return state


def cli_refuses(capsys, argv: list[str], *fragments: str) -> str:
    """Run ``cnnkit argv`` in-process: exit 2, one line ``cnnkit: error: ...`` holding every
    fragment, no internal error, nothing on stdout. Returns the message."""
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, err
    assert err.startswith("cnnkit: error: ") and "internal error" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert captured.out == ""
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err.strip().removeprefix("cnnkit: error: ")
