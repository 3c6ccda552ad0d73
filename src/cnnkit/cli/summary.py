"""``cnnkit summary MODEL --input C,H,W``: the layer-by-layer trace of a model.

MODEL is a zoo name (``cnnkit zoo`` lists them) or ``package.module:callable`` returning an
``nn.Module``. The model is built and traced on the meta device, so any input size and batch
costs no memory; ``--measure`` runs it for real once to measure what autograd saves.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from typing import Any

from cnnkit.cli._common import add_format, parse_ints
from cnnkit.errors import ConfigError

FORMATS = ("table", "json", "csv", "md")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL, --input, --batch, --depth, --model-kwargs, --output: shared with diagram."""
    parser.add_argument(
        "model", metavar="MODEL", help="zoo name (see `cnnkit zoo`) or package.module:callable"
    )
    parser.add_argument(
        "--input",
        metavar="C,H,W",
        action="append",
        help="one sample's shape, without the batch (default: a zoo model's default input); "
        "repeat it for a model with several inputs: --input 3,224,224 --input 10",
    )
    parser.add_argument(
        "--dtypes",
        metavar="LIST",
        help="one torch dtype per --input, e.g. float32,long (default: the model's float dtype)",
    )
    parser.add_argument("--batch", type=int, default=1, metavar="N", help="batch size (default 1)")
    parser.add_argument(
        "--depth",
        type=int,
        metavar="D",
        help="aggregate rows at module depth D (default: one row per leaf layer)",
    )
    add_model_kwargs(parser)
    parser.add_argument(
        "--output", metavar="FILE", help="write to FILE (atomically) instead of standard output"
    )


def add_model_kwargs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-kwargs",
        metavar="JSON",
        help="keyword arguments for the model's factory, e.g. '{\"num_classes\": 10}'",
    )


def parse_model_kwargs(text: str | None) -> dict[str, Any]:
    """``--model-kwargs`` as a dict (a JSON object), or ``{}``: the one parser of the flag
    (summary, diagram, zoo, doctor)."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--model-kwargs: not valid JSON ({error.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise ConfigError(
            f"--model-kwargs must be a JSON object such as '{{\"in_channels\": 1}}', got {text!r}"
        )
    return value


def model_factory(spec: str, kwargs: dict[str, Any]) -> Callable[[], Any]:
    """A factory for ``summarize`` that names ``--model-kwargs`` when the model refuses them."""
    from cnnkit.models import resolve_model

    def build() -> Any:
        try:
            return resolve_model(spec, **kwargs)
        except (TypeError, ConfigError) as error:  # the zoo says "no keyword argument ..."
            if not kwargs or "keyword argument" not in str(error):
                raise
            raise ConfigError(f"--model-kwargs: {spec} does not accept them ({error})") from None

    return build


def write_output(text: str, path: str | None) -> None:
    """Print ``text``, or write it atomically to ``path`` (nothing half-written)."""
    if path is None:
        sys.stdout.write(text)
        return
    from cnnkit._io import atomic_write_text

    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise ConfigError(f"--output {path}: {error.strerror or error}") from None


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
        "--columns",
        metavar="LIST",
        help="table columns after Layer, Type, Output: any of input,kernel,params,trainable,"
        "macs,other_flops,memory,rf (default: params,macs,rf)",
    )
    parser.add_argument(
        "--mode",
        choices=("eval", "train"),
        default="eval",
        help="the modules' training flags during the trace (default: eval)",
    )
    parser.set_defaults(func=run)


def summarize_arguments(args: argparse.Namespace, **options: Any) -> Any:  # a Summary
    """Parse MODEL/--input/--batch/--depth and call ``summarize`` (shared with diagram)."""
    from cnnkit.analysis import summarize
    from cnnkit.models import model_info

    if args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}")
    if args.depth is not None and args.depth < 0:
        raise ConfigError(f"--depth must be >= 0, got {args.depth}")
    kwargs = parse_model_kwargs(args.model_kwargs)
    if args.input:
        shapes = [parse_ints(text, "--input") for text in args.input]
    elif ":" not in args.model:
        shapes = [model_info(args.model).default_input]  # also: unknown names fail here
    else:
        raise ConfigError(f"--input is required for {args.model!r} (e.g. --input 3,224,224)")
    dtypes = parse_dtypes(args.dtypes, len(shapes))
    for shape in shapes:
        elements = math.prod((args.batch, *shape))
        if elements > _INT64:
            raise ConfigError(
                f"--batch {args.batch} x --input {'x'.join(map(str, shape))} is {elements:.3g} "
                "elements, more than a tensor can index (int64)"
            )
    summary = summarize(
        model_factory(args.model, kwargs),
        shapes[0] if len(shapes) == 1 else shapes,
        dtypes=dtypes,
        batch_size=args.batch,
        depth=args.depth,
        **options,
    )
    return dataclasses.replace(summary, model=args.model)


_INT64 = 2**63 - 1


def parse_dtypes(text: str | None, count: int) -> list[Any] | None:
    """``--dtypes float32,long`` as torch dtypes, one per ``--input`` (``None``: not given)."""
    if text is None:
        return None
    import torch

    names = [part.strip() for part in text.split(",")]
    dtypes = []
    for name in names:
        dtype = getattr(torch, name, None) if name.isidentifier() else None
        if not isinstance(dtype, torch.dtype):
            raise ConfigError(
                f"--dtypes: {name!r} is not a torch dtype "
                "(e.g. float32, float16, long, int32, bool)"
            )
        dtypes.append(dtype)
    if len(dtypes) != count:
        raise ConfigError(
            f"--dtypes gives {len(dtypes)} dtype(s) for {count} input(s): one per --input"
        )
    return dtypes


def parse_columns(text: str | None) -> tuple[str, ...]:
    from cnnkit.analysis.render.table import DEFAULT_COLUMNS, OPTIONAL

    if text is None:
        return DEFAULT_COLUMNS
    names = tuple(part.strip().lower().replace("-", "_") for part in text.split(",") if part)
    unknown = [name for name in names if name not in OPTIONAL]
    if unknown or not names:
        raise ConfigError(
            f"--columns: unknown column {unknown[0] if unknown else text!r}; "
            f"choose from {','.join(OPTIONAL)}"
        )
    return names


def run(args: argparse.Namespace) -> int:
    from cnnkit.analysis.render import SUMMARY_FORMATS
    from cnnkit.analysis.render.table import render_table

    columns = parse_columns(args.columns)
    if args.columns is not None and args.format != "table":
        raise ConfigError("--columns applies to --format table")
    summary = summarize_arguments(args, measure=args.measure, mode=args.mode)
    if args.format == "table":
        text = render_table(summary, columns=columns)
    else:
        text = SUMMARY_FORMATS[args.format](summary)
    write_output(text, args.output)
    return 0
