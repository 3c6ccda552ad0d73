"""Every `--help` of every command and subcommand: each default said once, no internal labels.

The walk reads the parsers that `cnnkit` builds (so a new command is covered when it is added to
COMMANDS) and expands each option's help as argparse prints it.
"""

from __future__ import annotations

import argparse
import re

import pytest

from cnnkit.cli.main import build_parser

# capability labels of the project's specification ("(A4-A6)", "(C5)", "B6") and seed-document
# numbers ("seed 002", "001/003:"), which mean nothing to a user (and "seed 001" reads as a
# random seed)
INTERNAL_LABEL = re.compile(r"\(([A-E]\d+)([-,/ ]+[A-E]?\d+)*\)|\bseeds? \d{3}\b|\b00\d(/00\d)*:")
DOUBLED_DEFAULT = re.compile(r"default:.*default:", re.S | re.I)


def walk(parser: argparse.ArgumentParser, name: str = "cnnkit"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from walk(sub, f"{name} {sub_name}")


PARSERS = dict(walk(build_parser()))


def help_texts(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """(option, expanded help) of each action, the subcommand summaries, and the description."""
    formatter = parser._get_formatter()
    texts = [("description", parser.description or "")]
    for action in parser._actions:
        label = "/".join(action.option_strings) or action.dest
        if action.help and action.help != argparse.SUPPRESS:
            texts.append((label, formatter._expand_help(action)))
        if isinstance(action, argparse._SubParsersAction):
            texts.extend((choice.dest, choice.help or "") for choice in action._choices_actions)
    return texts


def test_the_walk_reaches_every_command_and_subcommand():
    assert {"cnnkit train", "cnnkit eval", "cnnkit predict", "cnnkit calc conv"} <= set(PARSERS)
    assert {"cnnkit lab gradient-flow", "cnnkit data fetch"} <= set(PARSERS)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_help_says_each_default_once_and_never_none(name):
    for option, text in help_texts(PARSERS[name]):
        assert not DOUBLED_DEFAULT.search(text), f"{name} {option}: {text!r}"
        assert "(default: None)" not in text, f"{name} {option}: {text!r}"


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_help_has_no_internal_capability_or_seed_labels(name):
    for option, text in help_texts(PARSERS[name]):
        assert not INTERNAL_LABEL.search(text), f"{name} {option}: {text!r}"
    PARSERS[name].format_help()  # and the whole page renders


def test_the_checks_catch_what_they_are_for():
    # a check that could not fail would prove nothing: each pattern flags the examples
    assert DOUBLED_DEFAULT.search("per-channel mean (default: computed) (default: None)")
    for text in ("the trace of a model (A4-A6).", "(seed 000 estimate)", "examples (B6)"):
        assert INTERNAL_LABEL.search(text), text
    assert INTERNAL_LABEL.search("002: coverage of a transposed conv")
    assert not INTERNAL_LABEL.search("seed of weights and input (default: 0)")


def test_train_shows_a_boolean_default_as_on_or_off_and_a_float_as_written():
    texts = dict(help_texts(PARSERS["cnnkit train"]))
    assert texts["--flip/--no-flip"].endswith("(default: on)")
    assert texts["--rotation"].endswith("(default: 0)")
    assert texts["--mean"] == "per-channel normalisation mean (default: computed)"


def test_precision_help_says_what_auto_resolves_to(monkeypatch):
    """The help's rule for auto against resolve_precision on the four kinds of machine."""
    import torch

    from cnnkit import runtime

    text = dict(help_texts(PARSERS["cnnkit train"]))["--precision"]
    assert "bf16 on CPUs with native bf16 units" in text and "fp32 on other CPUs" in text
    assert "fp16 on other CUDA GPUs" in text
    cpu = torch.device("cpu")
    for has_bf16, expected in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(runtime, "cpu_has_bf16", lambda has=has_bf16: has)
        assert runtime.resolve_precision("auto", cpu) is expected
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert runtime.resolve_precision("auto", torch.device("cuda")) is torch.float16
    assert runtime.resolve_precision("off", cpu) is None


def test_eval_flags_come_from_the_evaluation_section():
    from dataclasses import fields

    from cnnkit.train.config import EvaluationConfig

    texts = dict(help_texts(PARSERS["cnnkit eval"]))
    section = EvaluationConfig()
    for item in fields(EvaluationConfig):
        if item.name == "eval_weights":  # eval's --weights picks model or ema instead
            continue
        flag = (
            "--batch-size/--eval-batch-size" if item.name == "eval_batch_size" else "--" + item.name
        )
        assert texts[flag].startswith(item.metadata["help"]), flag  # the same help text
        assert f"{getattr(section, item.name)} unless it was set" in texts[flag], flag
    args = build_parser().parse_args(["eval", "run"])
    # the run's own settings
    assert args.hardest is None and args.eval_batch_size is None and args.tta is None
    assert build_parser().parse_args(["eval", "run", "--tta"]).tta == 1
    assert build_parser().parse_args(["eval", "run", "--no-tta"]).tta == 0
