"""``cnnkit diagram MODEL --format ascii|mermaid``: the model's captured graph, drawn.

The graph is the one ``cnnkit summary`` traces (on the meta device): every layer, residual add
and concatenation that the forward pass really executed. ``--depth D`` draws module calls at
depth D as single boxes.
"""

from __future__ import annotations

import argparse

from cnnkit.cli._common import add_format
from cnnkit.cli.summary import add_model_arguments, summarize_arguments, write_output

FORMATS = ("ascii", "mermaid")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diagram",
        help="draw a model's graph as ASCII or Mermaid",
        description=__doc__.split("\n\n")[0].replace("``", ""),
    )
    add_model_arguments(parser)
    add_format(parser, FORMATS, "ascii")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnkit.analysis.render import DIAGRAM_FORMATS

    summary = summarize_arguments(args)
    write_output(DIAGRAM_FORMATS[args.format](summary), args.output)
    return 0
