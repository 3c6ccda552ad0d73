"""``cnnkit zoo``: the model table (C5), every figure computed by the analyzer.

One row per registered model: parameters, MACs and the receptive field of the last feature map at
the model's default input (or ``--input``), and the published ImageNet top-1 where a source gives
one (``--format json`` carries the source). Seed 001 types such a model-selection table by hand;
here nothing is typed but the published accuracies.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from cnnkit.cli._common import add_format, parse_ints
from cnnkit.errors import ConfigError, ShapeError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cnnkit.analysis import LayerRow
    from cnnkit.models import ModelInfo

FORMATS = ("table", "json", "csv", "md")
COLUMNS = ("Model", "Family", "Input", "Params", "MACs", "RF", "Top-1 %")


@dataclass(frozen=True)
class ZooRow:
    """One model of the table. ``macs``/``rf`` are ``None`` when the model cannot take the input
    (``note`` says why); ``rf`` is per axis, of the output of ``rf_layer`` (the last feature map
    before global pooling); ``rf_global`` when a global branch (SE, attention) lets it see the
    whole input."""

    name: str
    family: str
    input_shape: tuple[int, ...]
    params: int
    macs: int | None
    rf: tuple[int | None, ...] | None
    rf_global: bool
    rf_layer: str | None
    top1: float | None
    dataset: str | None
    source: str | None
    note: str | None = None


def zoo_table(
    family: str | None = None,
    pattern: str | None = None,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
) -> list[ZooRow]:
    """Summarise every registered model (filtered by ``family`` / fnmatch ``pattern``).

    Each model is built and traced on the meta device by :func:`cnnkit.analysis.summarize`:
    ``params`` and ``macs`` (torch.utils.flop_counter's convention) at ``input_shape`` (default:
    the model's own ``default_input``; a different channel count builds the model with that
    ``in_channels``; ``num_classes`` rebuilds the classifier), and the receptive field of the
    last feature map (seed 002's recursion over the graph). ``top1`` is quoted from the source
    in :class:`~cnnkit.models.ModelInfo`.
    """
    from cnnkit.models import list_models, model_info

    names = list_models(pattern, family)
    if not names:
        where = f" in family {family!r}" if family else ""
        raise ConfigError(f"no model matches pattern {pattern!r}{where}")
    names.sort(key=_natural_key)  # resnet18 before resnet101
    return [_row(name, model_info(name), input_shape, num_classes) for name in names]


def _natural_key(name: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _row(
    name: str,
    info: ModelInfo,
    input_shape: tuple[int, int, int] | None,
    num_classes: int | None,
) -> ZooRow:
    from cnnkit.analysis import summarize
    from cnnkit.models import create_model

    shape = tuple(input_shape or info.default_input)
    options = _model_options(info, shape, num_classes)
    # a published accuracy belongs to the architecture as published, not to a rebuilt head/stem
    published = None if options else info.published
    common: dict[str, Any] = dict(
        name=name,
        family=info.family,
        input_shape=shape,
        top1=published.top1 if published else None,
        dataset=published.dataset if published else None,
        source=published.source if published else None,
    )
    try:
        summary = summarize(lambda: create_model(name, **options), shape)
    except ShapeError as error:
        import torch

        with torch.device("meta"):
            params = sum(p.numel() for p in create_model(name, **options).parameters())
        return ZooRow(
            **common,
            params=params,
            macs=None,
            rf=None,
            rf_global=False,
            rf_layer=None,
            note=str(error),
        )
    last = _last_feature_map(summary.layers, len(shape) + 1)
    rf = None if last is None or last.rf is None else tuple(last.rf)
    return ZooRow(
        **common,
        params=summary.total.params,
        macs=summary.total.macs,
        rf=rf,
        rf_global=bool(last is not None and last.rf_global and all(last.rf_global)),
        rf_layer=None if last is None else last.name,
    )


def _model_options(
    info: ModelInfo, shape: tuple[int, ...], num_classes: int | None
) -> dict[str, int]:
    options = {} if shape[0] == info.default_input[0] else {"in_channels": shape[0]}
    if num_classes is not None:
        options["num_classes"] = num_classes
    return options


def _last_feature_map(layers: Sequence[LayerRow], rank: int) -> LayerRow | None:
    # the last output shaped like the input (N, C, H, W) before the last adaptive pooling
    # (the classifier's; SE blocks pool too, earlier), else the last such output
    pools = [i for i, row in enumerate(layers) if row.type.lower().startswith("adaptive")]
    end = pools[-1] if pools else len(layers)
    maps = [row for row in layers[:end] if len(row.output_shape) == rank]
    return maps[-1] if maps else None


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
    add_format(parser, FORMATS, "table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    shape = parse_ints(args.input, "--input", length=3) if args.input else None
    if args.num_classes is not None and args.num_classes < 1:
        raise ConfigError(f"--num-classes must be >= 1, got {args.num_classes}")
    if args.weights is not None:
        return _check_weights(args.pattern, args.weights, shape, args.num_classes)
    rows = zoo_table(args.family, args.pattern, shape, args.num_classes)  # type: ignore[arg-type]
    sys.stdout.write(RENDERERS[args.format](rows))
    return 0


def _check_weights(
    name: str | None, path: str, shape: tuple[int, ...] | None, num_classes: int | None
) -> int:
    from cnnkit.models import create_model, model_info

    if name is None or any(char in name for char in "*?["):
        raise ConfigError(f"--weights needs one model name as PATTERN, got {name!r}")
    info = model_info(name)
    options = _model_options(info, shape or info.default_input, num_classes)
    model = create_model(name, weights=path, **options)
    params = sum(p.numel() for p in model.parameters())
    tensors = len(model.state_dict())
    print(f"{path} fits {name}: {tensors} tensors, {params:,} parameters (strict)")
    return 0


def _rf_text(row: ZooRow) -> str:
    if row.rf_global:
        return "global"
    if row.rf is None:
        return "-"
    if len(set(row.rf)) == 1:
        return "?" if row.rf[0] is None else str(row.rf[0])
    return "x".join("?" if v is None else str(v) for v in row.rf)


def _cells(row: ZooRow) -> list[str]:
    return [
        row.name,
        row.family,
        "x".join(str(v) for v in row.input_shape),
        f"{row.params:,}",
        "-" if row.macs is None else f"{row.macs:,}",
        _rf_text(row),
        "-" if row.top1 is None else f"{row.top1:.1f}",
    ]


def _footer(rows: list[ZooRow]) -> str:
    lines = [
        "MACs: multiply-accumulates of convs, linears and matmuls (torch.utils.flop_counter / 2)",
        "RF: receptive field of the last feature map before global pooling, in input pixels",
        "    (global: an SE or other global branch lets that map see the whole input)",
        "Top-1: published ImageNet-1k accuracy (sources: --format json)",
    ]
    lines += [f"{row.name}: {row.note}" for row in rows if row.note]
    return "\n".join(lines) + "\n"


def render_table(rows: list[ZooRow], width: int | None = None) -> str:
    """The human table (rich), then what the columns mean."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in COLUMNS:
        right = column in ("Params", "MACs", "RF", "Top-1 %")
        table.add_column(column, justify="right" if right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*_cells(row))
    buffer = io.StringIO()
    width = width or shutil.get_terminal_size((100, 24)).columns
    Console(file=buffer, width=max(width, 100), color_system=None, highlight=False).print(table)
    return buffer.getvalue() + _footer(rows)


def render_json(rows: list[ZooRow]) -> str:
    return json.dumps([asdict(row) for row in rows], indent=2) + "\n"


def render_csv(rows: list[ZooRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    fields = list(ZooRow.__dataclass_fields__)
    writer.writerow(fields)
    for row in rows:
        values = asdict(row)
        for key in ("input_shape", "rf"):
            if values[key] is not None:
                values[key] = "x".join("" if v is None else str(v) for v in values[key])
        writer.writerow(["" if values[f] is None else values[f] for f in fields])
    return buffer.getvalue()


def render_markdown(rows: list[ZooRow]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 2 + "---|" + "---:|" * 4]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n\n" + _footer(rows)


RENDERERS = {
    "table": render_table,
    "json": render_json,
    "csv": render_csv,
    "md": render_markdown,
}
