"""``cnnkit report RUN_DIR [RUN_DIR ...]``: the HTML report of a run, or runs compared."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="HTML report of a training run (or several runs compared)",
        description="Build the self-contained HTML report of a run folder (RUN_DIR/report.html) "
        "or, for several run folders, one page comparing them (--out required).",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folder(s) of cnnkit train")
    parser.add_argument(
        "--out", metavar="FILE", help="where to write the page (default: RUN_DIR/report.html)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnkit.report import write_report

    path = write_report(args.runs, args.out)
    print(f"report: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0
