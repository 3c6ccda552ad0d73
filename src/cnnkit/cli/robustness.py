"""``cnnkit robustness CHECKPOINT``: top-1 under corruptions, mCE, the half-resolution trade."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnkit.cli._common import add_format


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "robustness",
        help="accuracy of a checkpoint under corruptions (noise, blur, rotation, ...), mCE",
        description="Top-1 of a cnnkit checkpoint on its whole test set under each corruption at "
        "each severity (seeded per image), mCE against a baseline, a picture of the corruptions "
        "and the accuracy and speed with halved images.",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file or run folder")
    parser.add_argument(
        "--corruptions",
        metavar="LIST",
        help="comma-separated corruption names (default: all; see docs/robustness.md)",
    )
    parser.add_argument(
        "--severities", default="1-5", help="severities among 1-5, e.g. 1-5 or 1,3,5 (default 1-5)"
    )
    parser.add_argument("--baseline", metavar="CHECKPOINT", help="a checkpoint for CE and mCE")
    parser.add_argument(
        "--resolution",
        type=float,
        metavar="FACTOR",
        help="also measure top-1 and speed with image sides scaled by FACTOR (e.g. 0.5)",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="write robustness.json and corruptions.png into DIR"
    )
    parser.add_argument("--grid-index", type=int, default=0, help="test image shown in the grid")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random corruptions")
    parser.add_argument("--limit", type=int, help="only the first N test images (quick look)")
    parser.add_argument("--batch-size", type=int, default=500, help="evaluation batch size")
    parser.add_argument("--data-dir", help="where the dataset files are")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--weights",
        choices=("model", "ema"),
        default="model",
        help="the checkpoint's model weights or its EMA, as cnnkit eval (default: model)",
    )
    parser.add_argument(
        "--severity-table",
        type=int,
        choices=(1, 2),
        default=2,
        help="version of the severity table (docs/robustness.md; default 2, v1 as first published)",
    )
    add_format(parser, ("table", "json"), "table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnkit._io import atomic_write_text
    from cnnkit.train.robustness import evaluate_robustness, parse_severities
    from cnnkit.train.robustness_render import render_table

    severities = parse_severities(args.severities)
    names = None
    if args.corruptions:
        names = [name.strip() for name in args.corruptions.split(",") if name.strip()]
    out = Path(args.out) if args.out else None  # made once there is something to write
    result = evaluate_robustness(
        args.checkpoint,
        corruptions=names,
        severities=severities,
        baseline=args.baseline,
        resolution=args.resolution,
        grid=out / "corruptions.png" if out is not None else None,
        grid_index=args.grid_index,
        seed=args.seed,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        device=args.device,
        weights=args.weights,
        limit=args.limit,
        table_version=args.severity_table,
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "robustness.json", json.dumps(result.to_dict(), indent=2) + "\n")
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(render_table(result))
    return 0
