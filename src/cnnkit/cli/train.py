"""``cnnkit train``: flags generated from TrainConfig's settings, then ``cnnkit.train.fit``.

Each setting of every section becomes one flag named after it (``batch_size`` ->
``--batch-size``; booleans get ``--no-...``; an optional field accepts ``none``; the TTA level
is ``--tta [LEVEL]``/``--no-tta``). A flag that is not given overrides nothing, so the order is
defaults < ``--recipe`` < ``--config FILE`` < flags. ``--resume DIR`` continues a run with the
config saved in it (flags still override, e.g. a longer ``--epochs``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, Field
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
    parser: argparse.ArgumentParser, extra_names: Mapping[str, tuple[str, ...]] | None = None
) -> None:
    """Every ``cnnkit train`` flag (``cnnkit finetune`` reuses them); ``extra_names`` adds
    aliases of settings' flags."""
    from cnnkit.train.config import setting_fields
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
    names: dict[str, tuple[str, ...]] = dict(EXTRA_NAMES)
    for name, aliases in (extra_names or {}).items():
        names[name] = names.get(name, ("--" + name.replace("_", "-"),)) + aliases
    add_setting_flags(parser, setting_fields(), names)
    parser.add_argument(
        "--tta-shift",
        type=int,
        default=None,
        metavar="PIXELS",
        help="with --tta, also average over shifts by this many pixels: the same as "
        "--tta 1+PIXELS (kept for older command lines)",
    )


def add_setting_flags(
    parser: argparse.ArgumentParser,
    items: Iterable[Field],
    names: Mapping[str, tuple[str, ...]] | None = None,
    default_text: str | None = None,
) -> None:
    """One flag per setting field (its help from the field's metadata); ``names`` replaces a
    setting's flag names, ``default_text`` replaces the shown default (``cnnkit eval``: as the
    run was trained; ``{default}`` in it is the field's default). Fields marked ``flag=False``
    (records) get none."""
    from cnnkit.train.config import field_types

    hints = field_types()
    for item in items:
        if not item.metadata.get("flag", True):
            continue
        flags = (names or {}).get(item.name, ("--" + item.name.replace("_", "-"),))
        factory = item.default_factory
        default = (
            item.default
            if item.default is not MISSING
            else factory()
            if callable(factory)
            else None
        )
        help_text = item.metadata["help"]
        if default_text is not None:
            help_text = f"{help_text} (default: {default_text.format(default=_show(default))})"
        else:
            help_text = with_default(help_text, default)
        _add_flag(parser, flags, item, hints[item.name], help_text)


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
    parser: argparse.ArgumentParser, names: tuple[str, ...], item: Field, hint: Any, help_text: str
) -> None:
    dest = item.name
    if "bare" in item.metadata:  # --tta [LEVEL]: alone, the field's "bare" value; --no-tta
        parser.add_argument(
            *names,
            dest=dest,
            type=_parser_for(hint, names[0], False),
            nargs="?",
            const=item.metadata["bare"],
            default=None,
            metavar="LEVEL",
            help=help_text,
        )
        negative = ["--no-" + name[2:] for name in names]
        parser.add_argument(
            *negative,
            dest=dest,
            action="store_const",
            const=item.metadata["off"],
            help=argparse.SUPPRESS,
        )
        return
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
    """The flat settings the user set on the command line (``none`` becomes ``None``), with
    the older ``--tta-shift`` (turned into the TTA level by the config's loading)."""
    from cnnkit.train.config import setting_fields

    result = {}
    for name in [item.name for item in setting_fields()] + ["tta_shift"]:
        value = getattr(args, name, None)
        if value is not None:
            result[name] = None if value is NONE else value
    return result


def run(args: argparse.Namespace) -> int:
    return train_with(args, overrides_from(args))


def train_with(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """Resolve the config from ``args`` and ``overrides`` (the settings set), then train."""
    from cnnkit.train.config import resolve_config, resume_config

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
    from cnnkit.train.distributed import launched_world_size

    # warnings and errors of `cnnkit doctor` on stderr, once the new run is set up
    before = _doctor if args.doctor else None
    if config.runtime.nproc > 1 and launched_world_size() == 1:  # E7: start the processes here
        from cnnkit.train.launch import launch

        out_dir = launch(config, resume=args.resume, before_training=before)
    else:  # one process, or one of torchrun's
        out_dir = _fit_this_process(config, args.resume, before)
        if out_dir is None:  # rank > 0 of torchrun's: rank 0 writes the report
            return 0
    if args.report:
        from cnnkit.report import write_report

        print(f"report: {write_report(out_dir)}")
    return 0


def _fit_this_process(config: TrainConfig, resume: str | None, before: Any) -> Any:
    """``fit`` in this process; under torchrun only rank 0 reports (and prints a cnnkit error,
    which every rank raises alike; a lost contact names its rank, so every rank prints it).
    Returns the run folder, or ``None`` on a rank other than 0 (it has nothing to report)."""
    from cnnkit.errors import CnnkitError
    from cnnkit.train.distributed import PeerLostError, launched_rank
    from cnnkit.train.loop import fit

    try:
        result = fit(config, resume=resume, before_training=before)
    except CnnkitError as exc:
        if launched_rank() != 0 and not isinstance(exc, PeerLostError):
            raise SystemExit(2) from None
        raise
    return result.out_dir if launched_rank() == 0 else None


def _doctor(config: TrainConfig, image_shape: tuple[int, ...], num_classes: int) -> None:
    from cnnkit.doctor.training import print_before_training

    print_before_training(config, image_shape=image_shape, num_classes=num_classes)
