"""``cnnkit data info|fetch|list``: where a dataset is, what it holds, and getting it verified."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from cnnkit.cli._common import add_format

if TYPE_CHECKING:
    from cnnkit.data.info import DatasetInfo


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="find, download, verify and describe datasets",
        description="Datasets: fashion_mnist, mnist, kmnist, cifar10, cifar100, digits, "
        "digits_8x8, folder:<path>.",
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    info = actions.add_parser(
        "info", help="where the files are, their checks, classes, counts, mean/std (computed)"
    )
    info.add_argument("name", metavar="NAME", help="dataset name or folder:<path>")
    info.add_argument("--data-dir", help="folder searched first (also $CNNKIT_DATA)")
    add_format(info, ("text", "json"), "text")
    info.set_defaults(func=run)
    fetch = actions.add_parser("fetch", help="find the files, or download and verify them")
    fetch.add_argument("name", metavar="NAME", help="dataset name")
    fetch.add_argument("--data-dir", help="folder searched first and downloaded into")
    fetch.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="URL",
        help="base URL tried before the official mirrors (repeatable)",
    )
    fetch.set_defaults(func=run)
    listing = actions.add_parser("list", help="the dataset names")
    listing.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnkit import data

    if args.data_command == "list":
        for name in data.list_datasets():
            source = data.DATASETS.get(name)
            print(f"{name:<14} {source.title}")
        print(f"{'folder:<path>':<14} an ImageFolder tree (<path>/<class>/<image>)")
        return 0
    if args.data_command == "fetch":
        result = data.fetch_dataset(
            args.name,
            args.data_dir,
            mirrors=args.mirror,
            report=lambda line: print(line, file=sys.stderr),
        )
        for split, found in result.found.items():
            print(f"{args.name} {split}: {found.folder}")
        for path, how in result.verified.items():
            print(f"  {Path(path).name}: {how}")
        print(f"downloaded {len(result.downloaded)} file(s)")
        return 0
    info = data.dataset_info(args.name, args.data_dir)
    if args.format == "json":
        print(json.dumps(asdict(info), indent=2))
        return 0
    print(render_info(info))
    return 0


def render_info(info: DatasetInfo) -> str:
    """Plain-text rendering of a :class:`cnnkit.data.DatasetInfo` (computes nothing)."""
    lines = [f"{info.title} ({info.name})", f"found in: {info.location}"]
    for file in info.files:
        shown = Path(file.path).name if str(Path(file.path).parent) == info.location else file.path
        lines.append(f"  {shown}  {file.size_bytes:,} bytes  {file.verified}")
    classes = info.classes if len(info.classes) <= 12 else [*info.classes[:10], "..."]
    lines.append(f"classes ({len(info.classes)}): {', '.join(classes)}")
    lines.append("split   images  shape     mean (0-1)               std (0-1)")
    for split in info.splits:
        shape = "x".join(str(v) for v in split.image_shape)
        mean = ",".join(f"{v:.4f}" for v in split.mean)
        std = ",".join(f"{v:.4f}" for v in split.std)
        lines.append(f"{split.split:<7} {split.count:<7,} {shape:<9} {mean:<24} {std}")
    return "\n".join(lines)
