"""``cnnkit eval CHECKPOINT``: metrics of a saved run on a split (``cnnkit.train.evaluate``)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator

from cnnkit.cli._common import add_format

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
    from cnnkit.train.evaluation_render import render_text
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
