"""``cnnkit zoo``: the model table, every figure computed by the analyzer.

One row per registered model: parameters, MACs and the receptive field of the last feature map at
the model's default input (or ``--input``), and the published ImageNet top-1 where a source gives
one (``--format json`` carries the source). The rows come from
:func:`cnnkit.analysis.model_table.zoo_table`; this module parses, calls and renders.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from cnnkit.cli._common import add_format, parse_ints
from cnnkit.cli.summary import add_model_kwargs, parse_model_kwargs, write_output
from cnnkit.errors import ConfigError, ShapeError

if TYPE_CHECKING:
    from cnnkit.analysis.model_table import ZooRow
    from cnnkit.models.pretrained import PretrainedStatus

FORMATS = ("table", "json", "csv", "md")
WIDE = 400  # wider than any row: rich would truncate cells to fit a narrower console
COLUMNS = ("Model", "Family", "Input", "Params", "MACs", "RF", "Top-1 %")


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

    kwargs = parse_model_kwargs(args.model_kwargs)
    try:
        rows = zoo_table(args.family, args.pattern, shape, args.num_classes, kwargs)  # type: ignore[arg-type]
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
    fit = check_weights(name, path, shape, num_classes)
    print(f"{path} fits {name}: {fit.tensors} tensors, {fit.params:,} parameters (strict)")
    return 0


def _pretrained(pattern: str | None, download: bool, fmt: str, output: str | None) -> int:
    import sys

    from cnnkit.models.pretrained import pretrained_file, pretrained_status, published_weights

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


def render_pretrained_table(rows: list[PretrainedStatus]) -> str:
    """One line per published file: model, ImageNet top-1, file, where it is (or ``-``)."""
    header = ("Model", "Top-1 %", "File", "Downloaded")
    cells = [(r.model, f"{r.top1:.1f}", r.file, r.local or "-") for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *cells]]  # fmt: skip
    base = {r.url.removesuffix(r.file) for r in rows}
    lines.append(f"from {', '.join(sorted(base))}<File>; top-1 as torchvision's table gives it")
    return "\n".join(lines) + "\n"


def render_pretrained_json(rows: list[PretrainedStatus]) -> str:
    return json.dumps([row.to_dict() for row in rows], indent=2) + "\n"


def render_pretrained_csv(rows: list[PretrainedStatus]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    fields = ["model", "file", "url", "sha256_prefix", "top1", "local"]
    writer.writerow(fields)
    for row in rows:
        values = row.to_dict()
        writer.writerow(["" if values[f] is None else values[f] for f in fields])
    return buffer.getvalue()


def render_pretrained_markdown(rows: list[PretrainedStatus]) -> str:
    lines = ["| Model | Top-1 % | File |", "|---|---:|---|"]
    lines += [f"| {r.model} | {r.top1:.1f} | [{r.file}]({r.url}) |" for r in rows]
    return "\n".join(lines) + "\n"


PRETRAINED_RENDERERS = {
    "table": render_pretrained_table,
    "json": render_pretrained_json,
    "csv": render_pretrained_csv,
    "md": render_pretrained_markdown,
}


def _rf_text(row: ZooRow) -> str:
    """The local field per axis (``global`` where even it covers the input), then
    ``(global)`` where the exact field is global but the local one is not."""
    if row.local_rf is None or row.local_rf_global is None:
        return "-"
    axes = [
        "global" if whole else "?" if value is None else str(value)
        for value, whole in zip(row.local_rf, row.local_rf_global, strict=True)
    ]
    text = axes[0] if len(set(axes)) == 1 else "x".join(axes)
    if row.rf_global and any(row.rf_global) and not all(row.local_rf_global):
        text += " (global)"
    return text


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
        "RF: receptive field of the last feature map before global pooling, in input pixels,",
        "    through its convolutions (inputs broadcast over the map, such as SE gates, left out);",
        "    (global): an SE gate or other global branch also lets that map see the whole input;",
        "    global: even the convolutions see all of it; ?: no single field (uneven pooling)",
        "Top-1: published ImageNet-1k accuracy (sources: --format json)",
    ]
    lines += [f"{row.name}: {row.note}" for row in rows if row.note]
    return "\n".join(lines) + "\n"


def render_table(rows: list[ZooRow]) -> str:
    """The human table (rich), then what the columns mean. Every cell is printed whole: the
    table is as wide as its widest cells, whatever the terminal (a table never pads itself)."""
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
    Console(file=buffer, width=WIDE, color_system=None, highlight=False).print(table)
    return buffer.getvalue() + _footer(rows)


def render_json(rows: list[ZooRow]) -> str:
    return json.dumps([asdict(row) for row in rows], indent=2) + "\n"


def render_csv(rows: list[ZooRow]) -> str:
    from cnnkit.analysis.model_table import ZooRow

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    fields = list(ZooRow.__dataclass_fields__)
    writer.writerow(fields)
    for row in rows:
        values = asdict(row)
        for key in ("input_shape", "rf", "local_rf"):
            if values[key] is not None:
                values[key] = "x".join(_csv_value(v) for v in values[key])
        for key in ("rf_global", "local_rf_global"):  # flags: one word, or one per axis
            if values[key] is not None:
                words = [_csv_value(v) for v in values[key]]
                values[key] = words[0] if len(set(words)) == 1 else ";".join(words)
        writer.writerow(["" if values[f] is None else values[f] for f in fields])
    return buffer.getvalue()


def _csv_value(value: object) -> str:
    """One axis of a per-axis field: ``?`` unknown, ``true``/``false`` for flags."""
    if value is None:
        return "?"
    return str(value).lower() if isinstance(value, bool) else str(value)


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
