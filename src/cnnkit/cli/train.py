"""``cnnkit train``: flags generated from TrainConfig's fields, then ``cnnkit.train.fit``.

Each field becomes one flag (``batch_size`` -> ``--batch-size``; booleans get ``--no-...``; an
optional field accepts ``none``). A flag that is not given overrides nothing, so the order is
defaults < ``--recipe`` < ``--config FILE`` < flags. ``--resume DIR`` continues a run with the
config saved in it (flags still override, e.g. a longer ``--epochs``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, fields
from typing import TYPE_CHECKING, Any, Literal, get_args

from cnnkit.errors import ConfigError

if TYPE_CHECKING:
    from cnnkit.train.config import TrainConfig

EXTRA_NAMES = {"out_dir": ("--out", "--out-dir")}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (recipes: fast, best, seed003, ...)",
        description="Train a model; writes config.json, metrics.csv, final.json, last.pt, "
        "best.pt and plots into --out.",
    )
    add_train_arguments(parser)
    parser.set_defaults(func=run)


def add_train_arguments(
    parser: argparse.ArgumentParser, extra_names: dict[str, tuple[str, ...]] | None = None
) -> None:
    """Every ``cnnkit train`` flag (``cnnkit finetune`` reuses them); ``extra_names`` adds
    aliases of fields' flags."""
    from cnnkit.train.config import TrainConfig, field_types
    from cnnkit.train.recipes import RECIPES

    parser.add_argument(
        "--recipe", metavar="NAME", help=f"named config: {', '.join(RECIPES.names())}"
    )
    parser.add_argument("--config", metavar="FILE", help="JSON file of settings (over the recipe)")
    parser.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run in DIR (its last.pt); a run of a package.module:callable model "
        "needs --model naming it again",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the resolved config as JSON and exit"
    )
    parser.add_argument(
        "--no-doctor",
        dest="doctor",
        action="store_false",
        help="skip the doctor's checks before training",
    )
    parser.add_argument(
        "--report",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write report.html into the run folder at the end (cnnkit report; default: on)",
    )
    hints = field_types()
    for item in fields(TrainConfig):
        names = EXTRA_NAMES.get(item.name, ("--" + item.name.replace("_", "-"),))
        names += (extra_names or {}).get(item.name, ())
        default = item.default if item.default is not MISSING else item.default_factory()  # type: ignore[misc]
        help_text = with_default(item.metadata["help"], default)
        _add_flag(parser, names, item.name, hints[item.name], help_text)


def with_default(help_text: str, default: Any) -> str:
    """``help_text`` and its default, once: not when the text already says it, nor for None
    (an unset optional setting, described by the text)."""
    if default is None or "default" in help_text:
        return help_text
    return f"{help_text} (default: {_show(default)})"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _add_flag(
    parser: argparse.ArgumentParser, names: tuple[str, ...], dest: str, hint: Any, help_text: str
) -> None:
    args = get_args(hint)
    optional = type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    if hint is bool:
        parser.add_argument(
            *names, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text
        )
        return
    origin = getattr(hint, "__origin__", None)
    if origin is Literal:
        choices = list(get_args(hint))
        parser.add_argument(*names, dest=dest, choices=choices, default=None, help=help_text)
        return
    parse = _parser_for(hint, names[0], optional)
    metavar = {int: "N", float: "X", str: "TEXT"}.get(hint, "VALUE")
    if origin is list:
        metavar = "X[,X...]"
    elif origin is dict:
        metavar = "JSON"
    parser.add_argument(
        *names, dest=dest, type=parse, default=None, metavar=metavar, help=help_text
    )


class _NoneValue:
    """Marks an explicit ``none`` on the command line (argparse's ``None`` means 'not given')."""


NONE = _NoneValue()


def _parser_for(hint: Any, flag: str, optional: bool) -> Any:
    origin = getattr(hint, "__origin__", None)

    def parse(text: str) -> Any:
        if optional and text.lower() == "none":
            return NONE
        try:
            if origin is list:
                return [float(part) for part in text.split(",") if part.strip()]
            if origin is dict:
                value = json.loads(text)
                if not isinstance(value, dict):
                    raise ValueError("expected a JSON object")
                return value
            return hint(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"invalid value {text!r} ({exc})") from None

    parse.__name__ = getattr(hint, "__name__", "value")
    return parse


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """The fields the user set on the command line (``none`` becomes ``None``)."""
    from cnnkit.train.config import TrainConfig

    result = {}
    for item in fields(TrainConfig):
        value = getattr(args, item.name, None)
        if value is not None:
            result[item.name] = None if value is NONE else value
    return result


def run(args: argparse.Namespace) -> int:
    return train_with(args, overrides_from(args))


def train_with(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """Resolve the config from ``args`` and ``overrides`` (the fields set), then train."""
    from cnnkit.train.config import resolve_config, resume_config

    if overrides.get("init_from") is not None and "model" not in overrides:
        from cnnkit.train.transfer import checkpoint_model

        # fine-tuning a cnnkit run: its model, unless --model names another
        recorded = checkpoint_model(overrides["init_from"])
        if recorded is not None and args.resume is None:
            overrides = {**overrides, "model": recorded[0], "model_kwargs": recorded[1]}
    if args.resume is not None:
        if args.recipe or args.config:
            raise ConfigError("--resume: the run's saved config is used; drop --recipe/--config")
        from cnnkit.train.checkpoint import load_checkpoint

        # a model module:callable recorded in the run is built only when --model names it again
        saved = load_checkpoint(args.resume, resumable=True)
        config = resume_config(saved, args.resume, overrides)
    else:
        config = resolve_config(args.recipe, args.config, overrides)
    if args.dry_run:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    from cnnkit.train.loop import fit

    # warnings and errors of `cnnkit doctor` on stderr, once the new run is set up
    result = fit(config, resume=args.resume, before_training=_doctor if args.doctor else None)
    if args.report:
        from cnnkit.report import write_report

        print(f"report: {write_report(result.out_dir)}")
    return 0


def _doctor(config: TrainConfig, image_shape: tuple[int, ...], num_classes: int) -> None:
    from cnnkit.doctor.training import print_before_training

    print_before_training(config, image_shape=image_shape, num_classes=num_classes)
