"""``cnnkit eval CHECKPOINT``: metrics of a saved run on a split (``cnnkit.train.evaluate``)."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from cnnkit.cli._common import add_format

if TYPE_CHECKING:
    from cnnkit.train.evaluation import EvalResult


# cnnkit eval's flags of the evaluation section (its eval_weights chooses best.pt or last.pt
# while training; eval's --weights chooses model or ema in a checkpoint instead)
EVAL_SETTINGS = ("tta", "eval_batch_size", "hardest")
EVAL_NAMES = {"eval_batch_size": ("--batch-size", "--eval-batch-size")}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint: top-1/top-5, loss, per-class precision/recall/F1, "
        "confusion matrix",
        description="Evaluate a cnnkit checkpoint (best.pt, last.pt, or a run folder) on a "
        "dataset split.",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file or run folder")
    parser.add_argument("--dataset", help="dataset name (default: the one the run trained on)")
    parser.add_argument(
        "--split",
        choices=("test", "val", "train"),
        default="test",
        help="test; val: the run's own validation split, rebuilt from its config and split "
        "seed; or train (default: test)",
    )
    parser.add_argument("--data-dir", help="where the dataset files are")
    parser.add_argument(
        "--weights",
        choices=("model", "ema"),
        default="model",
        help="the checkpoint's model weights or its EMA (last.pt of an --ema run; default: model)",
    )
    _add_evaluation_flags(parser)
    parser.add_argument(
        "--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="also write eval-SPLIT.json, per_class-SPLIT.csv and confusion-SPLIT.png into DIR",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar (it shows only on a terminal)"
    )
    parser.add_argument(
        "--model",
        metavar="SPEC",
        help="the package.module:callable to build when the run's model is one (a checkpoint "
        "never selects code to run itself; only name code you trust)",
    )
    add_format(parser, ("text", "json"), "text")
    parser.set_defaults(func=run)


def _add_evaluation_flags(parser: argparse.ArgumentParser) -> None:
    """``--tta``, ``--batch-size`` and ``--hardest``: the evaluation section's settings, with
    its help texts; each defaults to the run's own value."""
    from dataclasses import fields

    from cnnkit.cli.train import add_setting_flags
    from cnnkit.train.config import EvaluationConfig

    chosen = [item for item in fields(EvaluationConfig) if item.name in EVAL_SETTINGS]
    add_setting_flags(parser, chosen, EVAL_NAMES, "the run's setting, {default} unless it was set")
    parser.add_argument(
        "--tta-shift",
        type=int,
        default=None,
        metavar="PIXELS",
        help="with --tta, also average over shifts by this many pixels: the same as "
        "--tta 1+PIXELS (kept for older command lines)",
    )


def eval_tta(args: argparse.Namespace) -> int | None:
    """The TTA level asked for: ``--tta [LEVEL]``, or the older ``--tta --tta-shift N``."""
    if args.tta_shift is None:
        return args.tta
    if args.tta_shift < 0:
        from cnnkit.errors import ConfigError

        raise ConfigError(f"--tta-shift: must be >= 0, got {args.tta_shift}")
    return 0 if args.tta == 0 else 1 + args.tta_shift


def run(args: argparse.Namespace) -> int:
    from cnnkit.train.evaluation import evaluate
    from cnnkit.train.jsonio import dumps

    if args.out is not None:
        from cnnkit.train.eval_files import check_out_dir

        check_out_dir(args.out)  # before the evaluation, not after it
    with _progress_bar(enabled=not args.quiet) as progress:
        result = evaluate(
            args.checkpoint,
            dataset=args.dataset,
            split=args.split,
            data_dir=args.data_dir,
            tta=eval_tta(args),
            weights=args.weights,
            batch_size=args.eval_batch_size,
            device=args.device,
            hardest=args.hardest,
            progress=progress,
            model=args.model,
        )
    written = []
    if args.out is not None:
        from cnnkit.train.eval_files import write_eval_files

        written = write_eval_files(result, args.out)
    if args.format == "json":
        print(dumps(result.to_dict()))
        return 0
    print(render_text(result))
    if written:
        print(f"\nwrote {', '.join(str(p) for p in written)}")
    return 0


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A transient rich bar on stderr over the evaluated images; none off a terminal."""
    from rich.console import Console

    console = Console(file=sys.stderr, highlight=False)
    if not enabled or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "evaluating",
        BarColumn(),
        MofNCompleteColumn(),
        "images",
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task("eval", total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


def render_text(result: EvalResult) -> str:
    """Metrics, per-class precision/recall/F1 and the confusion matrix as aligned text."""
    from cnnkit.train.evaluation import tta_label

    metrics = result.metrics
    classes = metrics.classes
    tta = tta_label(result.tta)
    lines = [
        f"{result.checkpoint} on {result.dataset} {result.split} ({metrics.count:,} images, "
        f"{result.weights} weights{', ' + tta if tta else ''})",
        f"top-1 {metrics.top1:.2f}%  top-5 {metrics.top5:.2f}%  loss {metrics.loss:.4f}",
    ]
    if result.run_environment is not None:
        lines.append(f"trained with {result.run_environment.line()}")
    lines += [
        "",
        "per class (recall = the class's accuracy):",
    ]
    width = max(len(name) for name in classes)
    lines.append(f"  {'':<{width}}  {'precision':>9}  {'recall':>7}  {'F1':>7}  {'images':>7}")
    for score in metrics.class_scores:
        lines.append(
            f"  {score.name:<{width}}  {_percent(score.precision):>9}  "
            f"{_percent(score.recall):>7}  {_percent(score.f1):>7}  {score.support:>7,}"
        )
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


def _percent(value: float) -> str:
    """``85.00%``, or ``-`` where the figure is undefined (no image of, or predicted as, it)."""
    return f"{value:.2f}%" if math.isfinite(value) else "-"
