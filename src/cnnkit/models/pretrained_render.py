"""Renderers of the published-weights table (``cnnkit zoo --pretrained``): text, JSON, CSV,
Markdown. They format :class:`cnnkit.models.pretrained.PretrainedStatus` rows and compute
nothing."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from cnnkit._text import aligned_rows

if TYPE_CHECKING:
    from cnnkit.models.pretrained import PretrainedStatus


def render_pretrained_table(rows: list[PretrainedStatus]) -> str:
    """One line per published file: model, ImageNet top-1, file, where it is (or ``-``)."""
    header = ("Model", "Top-1 %", "File", "Downloaded")
    cells = [(r.model, f"{r.top1:.1f}", r.file, r.local or "-") for r in rows]
    lines = aligned_rows([header, *cells])
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
