"""``cnnkit summary MODEL --input C,H,W``: the layer-by-layer trace of a model.

MODEL is a zoo name (``cnnkit zoo`` lists them) or ``package.module:callable`` returning an
``nn.Module``. The model is built and traced on the meta device, so any input size and batch
costs no memory; ``--measure`` runs it for real once to measure what autograd saves.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from cnnkit.cli._common import add_format, parse_ints
from cnnkit.errors import ConfigError

FORMATS = ("table", "json", "csv", "md")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL, --input, --batch, --depth: shared with ``cnnkit diagram``."""
    parser.add_argument(
        "model", metavar="MODEL", help="zoo name (see `cnnkit zoo`) or package.module:callable"
    )
    parser.add_argument(
        "--input",
        metavar="C,H,W",
        help="one sample's shape, without the batch (default: a zoo model's default input)",
    )
    parser.add_argument("--batch", type=int, default=1, metavar="N", help="batch size (default 1)")
    parser.add_argument(
        "--depth",
        type=int,
        metavar="D",
        help="aggregate rows at module depth D (default: one row per leaf layer)",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summary",
        help="layer-by-layer shapes, params, MACs, memory and receptive field",
        description=__doc__.split("\n\n")[0].replace("``", ""),
    )
    add_model_arguments(parser)
    add_format(parser, FORMATS, "table")
    parser.add_argument(
        "--measure",
        action="store_true",
        help="also run one real training-mode forward and measure the bytes autograd saves",
    )
    parser.add_argument(
        "--mode",
        choices=("eval", "train"),
        default="eval",
        help="the modules' training flags during the trace (default: eval)",
    )
    parser.set_defaults(func=run)


def summarize_arguments(args: argparse.Namespace, **options: object):  # type: ignore[no-untyped-def]
    """Parse MODEL/--input/--batch/--depth and call ``summarize`` (shared with diagram)."""
    from cnnkit.analysis import summarize
    from cnnkit.models import model_info, resolve_model

    if args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}")
    if args.depth is not None and args.depth < 0:
        raise ConfigError(f"--depth must be >= 0, got {args.depth}")
    if args.input is not None:
        input_shape = parse_ints(args.input, "--input")
    elif ":" not in args.model:
        input_shape = model_info(args.model).default_input  # also: unknown names fail here
    else:
        raise ConfigError(f"--input is required for {args.model!r} (e.g. --input 3,224,224)")
    summary = summarize(
        lambda: resolve_model(args.model),
        input_shape,
        batch_size=args.batch,
        depth=args.depth,
        **options,  # type: ignore[arg-type]
    )
    return dataclasses.replace(summary, model=args.model)


def run(args: argparse.Namespace) -> int:
    from cnnkit.analysis.render import SUMMARY_FORMATS

    summary = summarize_arguments(args, measure=args.measure, mode=args.mode)
    sys.stdout.write(SUMMARY_FORMATS[args.format](summary))
    return 0
