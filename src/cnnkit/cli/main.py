"""Entry point of the ``cnnkit`` command.

Each command lives in ``cnnkit/cli/<name>.py`` and exposes ``add_parser(subparsers)`` (which sets
``func`` on its parser to a ``run(args) -> int``). Library imports happen inside ``run`` so that
``cnnkit --help`` stays fast. Every :class:`~cnnkit.errors.CnnkitError` is caught here, once, and
printed as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from cnnkit.errors import CnnkitError

# Order is the order of `cnnkit --help`.
COMMANDS: tuple[str, ...] = (
    "summary",
    "diagram",
    "calc",
    "zoo",
    "data",
    "train",
    "eval",
    "predict",
    "lab",
    "demo",
    "doctor",
    "report",
    "deploy",
    "explain",
    "robustness",
    "finetune",
)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the flag (and exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from cnnkit import __version__

    parser = OneLineParser(
        prog="cnnkit",
        description="CNNs computed and verified: analysis, zoo, training, reference ops.",
    )
    parser.add_argument("--version", action="version", version=f"cnnkit {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=OneLineParser
    )
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"cnnkit.cli.{name}")
        except ModuleNotFoundError as exc:  # a command group not built yet
            if exc.name == f"cnnkit.cli.{name}":
                continue
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CnnkitError as exc:
        print(f"cnnkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cnnkit summary ... | head`
        return 0
    except Exception as exc:  # a bug, not bad input: still one line unless asked
        if os.environ.get("CNNKIT_DEBUG"):
            raise
        print(
            f"cnnkit: internal error: {type(exc).__name__}: {exc} "
            "(set CNNKIT_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
