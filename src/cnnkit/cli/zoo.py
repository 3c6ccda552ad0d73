"""``cnnkit zoo``: the model table, every figure computed by the analyzer.

One row per registered model: parameters, MACs and the receptive field of the last feature map at
the model's default input (or ``--input``), and the published ImageNet top-1 where a source gives
one (``--format json`` carries the source). The rows come from
:func:`cnnkit.analysis.model_table.zoo_table` and are rendered by
:mod:`cnnkit.analysis.model_table_render`; this module parses the flags and calls them.
"""

from __future__ import annotations

import argparse

from cnnkit.cli._common import add_format, parse_ints
from cnnkit.cli.summary import add_model_kwargs, parse_model_kwargs, write_output
from cnnkit.errors import ConfigError, ShapeError

FORMATS = ("table", "json", "csv", "md")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "zoo",
        help="the model table: params, MACs, receptive field, published top-1",
        description=__doc__.split("\n\n")[0].replace("``", ""),
    )
    parser.add_argument(
        "pattern", nargs="?", metavar="PATTERN", help="fnmatch pattern of names, e.g. 'resnet*'"
    )
    parser.add_argument("--family", metavar="F", help="only this family (resnet, vgg, ...)")
    parser.add_argument(
        "--input",
        metavar="C,H,W",
        help="one sample's shape for every model (default: each model's default input)",
    )
    parser.add_argument(
        "--num-classes", type=int, metavar="N", help="build the classifiers with N outputs"
    )
    parser.add_argument(
        "--weights",
        metavar="FILE",
        help="check that a torchvision or cnnkit checkpoint loads strictly into the model "
        "PATTERN names (with --num-classes/--input for a fine-tuned one)",
    )
    parser.add_argument(
        "--pretrained",
        action="store_true",
        help="list torchvision's published ImageNet weights for the models PATTERN names "
        "(file, top-1, whether downloaded); create_model(name, pretrained=True) loads them",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="with --pretrained: download (or find) and check the weight files PATTERN names",
    )
    add_model_kwargs(parser)
    parser.add_argument(
        "--output", metavar="FILE", help="write to FILE (atomically) instead of standard output"
    )
    add_format(parser, FORMATS, "table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    shape = parse_ints(args.input, "--input", length=3) if args.input else None
    if args.num_classes is not None and args.num_classes < 1:
        raise ConfigError(f"--num-classes must be >= 1, got {args.num_classes}")
    if args.download and not args.pretrained:
        raise ConfigError("--download needs --pretrained (it fetches the published weights)")
    if args.pretrained:
        if args.weights is not None:
            raise ConfigError("--pretrained and --weights: pass one of them")
        return _pretrained(args.pattern, args.download, args.format, args.output)
    if args.weights is not None:
        return _check_weights(args.pattern, args.weights, shape, args.num_classes)
    from cnnkit.analysis.model_table import zoo_table
    from cnnkit.analysis.model_table_render import RENDERERS

    kwargs = parse_model_kwargs(args.model_kwargs)
    try:
        rows = zoo_table(args.family, args.pattern, shape, args.num_classes, kwargs)  # type: ignore[arg-type]  # the shape is parsed and checked by _shape before this call
    except (TypeError, ConfigError) as error:  # the zoo says "no keyword argument ..."
        if not kwargs or "keyword argument" not in str(error):
            raise
        raise ConfigError(f"--model-kwargs: a model does not accept them ({error})") from None
    one_name = args.pattern is not None and not any(char in args.pattern for char in "*?[")
    if one_name and len(rows) == 1 and rows[0].note:  # one model asked for: fail as summary does
        raise ShapeError(rows[0].note)
    write_output(RENDERERS[args.format](rows), args.output)
    return 0


def _check_weights(
    name: str | None, path: str, shape: tuple[int, ...] | None, num_classes: int | None
) -> int:
    from cnnkit.analysis.model_table import check_weights

    if name is None or any(char in name for char in "*?["):
        raise ConfigError(f"--weights needs one model name as PATTERN, got {name!r}")
    from cnnkit.analysis.model_table_render import render_weights_fit

    fit = check_weights(name, path, shape, num_classes)
    print(render_weights_fit(fit))
    return 0


def _pretrained(pattern: str | None, download: bool, fmt: str, output: str | None) -> int:
    import sys

    from cnnkit.models.pretrained import pretrained_file, pretrained_status, published_weights
    from cnnkit.models.pretrained_render import PRETRAINED_RENDERERS

    if pattern is not None and not any(char in pattern for char in "*?["):
        published_weights(pattern)  # one name without weights: say so, not an empty table
    if download and pattern is None:
        raise ConfigError("--pretrained --download needs PATTERN (a name, or '*' for all)")
    rows = pretrained_status(pattern)
    if not rows:
        raise ConfigError(f"no model with published weights matches {pattern!r}")
    if download:
        for row in rows:
            path = pretrained_file(row.model, report=lambda line: print(line, file=sys.stderr))
            print(f"{row.model}: {path} (sha256 starts with {row.sha256_prefix}: checked)")
        return 0
    write_output(PRETRAINED_RENDERERS[fmt](rows), output)
    return 0
