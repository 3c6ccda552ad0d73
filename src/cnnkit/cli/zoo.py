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
    from cnnkit.models import ModelInfo

FORMATS = ("table", "json", "csv", "md")
COLUMNS = ("Model", "Family", "Input", "Params", "MACs", "RF", "Top-1 %")


@dataclass(frozen=True)
class ZooRow:
    """One model of the table. ``macs``/``rf`` are ``None`` when the model cannot take the input
    (``note`` says why); ``rf`` is per axis, of the output of module ``rf_layer``."""

    name: str
    family: str
    input_shape: tuple[int, ...]
    params: int
    macs: int | None
    rf: tuple[int | None, ...] | None
    rf_layer: str | None
    top1: float | None
    dataset: str | None
    source: str | None
    note: str | None = None


def zoo_table(
    family: str | None = None,
    pattern: str | None = None,
    input_shape: tuple[int, int, int] | None = None,
) -> list[ZooRow]:
    """Summarise every registered model (filtered by ``family`` / fnmatch ``pattern``).

    Each model is built and traced on the meta device by :func:`cnnkit.analysis.summarize`:
    ``params`` and ``macs`` (torch.utils.flop_counter's convention) at ``input_shape`` (default:
    the model's own ``default_input``; a different channel count builds the model with that
    ``in_channels``), and the receptive field of the last spatial output (seed 002's recursion
    over the graph). ``top1`` is quoted from the source in :class:`~cnnkit.models.ModelInfo`.
    """
    from cnnkit.models import list_models, model_info

    names = list_models(pattern, family)
    if not names:
        where = f" in family {family!r}" if family else ""
        raise ConfigError(f"no model matches pattern {pattern!r}{where}")
    names.sort(key=_natural_key)  # resnet18 before resnet101
    return [_row(name, model_info(name), input_shape) for name in names]


def _natural_key(name: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _row(name: str, info: ModelInfo, input_shape: tuple[int, int, int] | None) -> ZooRow:
    from cnnkit.analysis import summarize
    from cnnkit.models import create_model

    shape = tuple(input_shape or info.default_input)
    options = {} if shape[0] == info.default_input[0] else {"in_channels": shape[0]}
    published = info.published
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
        return ZooRow(**common, params=params, macs=None, rf=None, rf_layer=None, note=str(error))
    total = summary.total
    rf = tuple(total.rf) if total.rf is not None else None
    return ZooRow(**common, params=total.params, macs=total.macs, rf=rf, rf_layer=total.rf_layer)


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
    add_format(parser, FORMATS, "table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    shape = parse_ints(args.input, "--input", length=3) if args.input else None
    rows = zoo_table(args.family, args.pattern, shape)  # type: ignore[arg-type]
    sys.stdout.write(RENDERERS[args.format](rows))
    return 0


def _rf_text(row: ZooRow) -> str:
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
        "RF: receptive field of the last spatial feature map, in input pixels",
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
