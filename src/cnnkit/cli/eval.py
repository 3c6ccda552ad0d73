"""``cnnkit eval CHECKPOINT``: metrics of a saved run on a split (``cnnkit.train.evaluate``)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator

from cnnkit.cli._common import add_format


def _train_default(name: str) -> object:
    """A TrainConfig field's default: eval's defaults are taken from there, not repeated."""
    from cnnkit.train.config import TrainConfig

    return TrainConfig.__dataclass_fields__[name].default


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
        help="the checkpoint's model weights or its EMA (last.pt of an --ema run; default: model)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="N",
        help="evaluation batch size (default: the run's --eval-batch-size, "
        f"{_train_default('eval_batch_size')} unless it was set)",
    )
    parser.add_argument(
        "--hardest",
        type=int,
        default=None,
        metavar="N",
        help="hardest samples to list (default: the run's --hardest, "
        f"{_train_default('hardest')} unless it was set)",
    )
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
            tta=args.tta,
            tta_shift=args.tta_shift,
            weights=args.weights,
            batch_size=args.batch_size,
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
