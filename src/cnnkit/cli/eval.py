"""``cnnkit eval CHECKPOINT``: test metrics of a saved run (``cnnkit.train.evaluate``)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from cnnkit.cli._common import add_format

if TYPE_CHECKING:
    from cnnkit.train.evaluation import EvalResult


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint: top-1/top-5, loss, per-class accuracy, confusion matrix",
        description="Evaluate a cnnkit checkpoint (best.pt, last.pt, or a run folder) on a "
        "dataset split.",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file or run folder")
    parser.add_argument("--dataset", help="dataset name (default: the one the run trained on)")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument("--data-dir", help="where the dataset files are")
    parser.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average with the horizontal flip (default: as the run was trained)",
    )
    parser.add_argument(
        "--tta-shift",
        type=int,
        default=None,
        metavar="PIXELS",
        help="with --tta, also average over shifts by this many pixels (airbench's TTA level 2; "
        "0: off; default: as the run was trained)",
    )
    parser.add_argument(
        "--weights",
        choices=("model", "ema"),
        default="model",
        help="the checkpoint's model weights or its EMA (last.pt of an --ema run)",
    )
    parser.add_argument("--batch-size", type=int, default=500, help="evaluation batch size")
    parser.add_argument("--hardest", type=int, default=10, help="hardest samples to list")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--model",
        metavar="SPEC",
        help="the package.module:callable to build when the run's model is one (a checkpoint "
        "never selects code to run itself; only name code you trust)",
    )
    add_format(parser, ("text", "json"), "text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnkit.errors import ConfigError
    from cnnkit.train.evaluation import evaluate

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size: must be >= 1, got {args.batch_size}")
    if args.hardest < 0:
        raise ConfigError(f"--hardest: must be >= 0, got {args.hardest}")
    result = evaluate(
        args.checkpoint,
        dataset=args.dataset,
        split=args.split,
        data_dir=args.data_dir,
        tta=args.tta,
        tta_shift=args.tta_shift,
        weights=args.weights,
        batch_size=args.batch_size,
        device=args.device,
        hardest=args.hardest,
        model=args.model,
    )
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(render_text(result))
    return 0


def render_text(result: EvalResult) -> str:
    """Metrics, per-class accuracy and the confusion matrix as plain aligned text."""
    from cnnkit.train.evaluation import tta_label

    metrics = result.metrics
    classes = metrics.classes
    tta = tta_label(result.tta, result.tta_shift)
    lines = [
        f"{result.checkpoint} on {result.dataset} {result.split} ({metrics.count:,} images, "
        f"{result.weights} weights{', ' + tta if tta else ''})",
        f"top-1 {metrics.top1:.2f}%  top-5 {metrics.top5:.2f}%  loss {metrics.loss:.4f}",
        "",
        "per-class accuracy:",
    ]
    width = max(len(name) for name in classes)
    for name, accuracy, row in zip(classes, metrics.per_class, metrics.confusion, strict=True):
        lines.append(f"  {name:<{width}}  {accuracy:6.2f}%  ({sum(row):,} images)")
    lines += ["", "confusion matrix (rows: true class, columns: predicted):"]
    cell = max(4, max(len(str(v)) for row in metrics.confusion for v in row) + 1)
    label_width = width + len(str(len(classes) - 1)) + 1
    lines.append(" " * label_width + "".join(f"{i:>{cell}}" for i in range(len(classes))))
    for index, (name, row) in enumerate(zip(classes, metrics.confusion, strict=True)):
        label = f"{index} {name}"
        lines.append(f"{label:<{label_width}}" + "".join(f"{v:>{cell}}" for v in row))
    if metrics.hardest:
        lines += ["", "hardest samples (highest loss):"]
        for sample in metrics.hardest:
            lines.append(
                f"  #{sample.index:<6} {classes[sample.label]} -> {classes[sample.predicted]} "
                f"({sample.confidence:.0%}), loss {sample.loss:.2f}"
            )
    return "\n".join(lines)
