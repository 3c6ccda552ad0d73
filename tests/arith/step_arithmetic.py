"""Check the arithmetic written in a worked problem's steps: every ``a = b = c`` chain agrees.

A step such as ``H, W: floor((224 + 2*3 - 7)/2) + 1 = floor(223/2) + 1 = 112`` is split at
``;`` into clauses and at `` = `` into parts; the parts made only of numbers, operators,
parentheses, floor and ceil are evaluated exactly (fractions) and must all be equal.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_NUMERIC = re.compile(r"^[\d.+\-*/() ]+$")
_TOKEN = re.compile(r"\s*(floor|ceil|\d+(?:\.\d+)?|[-+*/()])")


def _evaluate(text: str) -> Fraction:
    """Exact value of +, -, *, /, parentheses, floor() and ceil() over decimal numbers."""
    tokens = _TOKEN.findall(text)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def atom() -> Fraction:
        token = take()
        if token in ("floor", "ceil"):
            assert take() == "("
            value = expression()
            assert take() == ")"
            return Fraction(math.floor(value) if token == "floor" else math.ceil(value))
        if token == "(":
            value = expression()
            assert take() == ")"
            return value
        if token == "-":
            return -atom()
        return Fraction(token)

    def term() -> Fraction:
        value = atom()
        while peek() in ("*", "/"):
            value = value * atom() if take() == "*" else value / atom()
        return value

    def expression() -> Fraction:
        value = term()
        while peek() in ("+", "-"):
            value = value + term() if take() == "+" else value - term()
        return value

    value = expression()
    assert position == len(tokens), f"could not read {text!r}"
    return value


def _value(part: str) -> Fraction | None:
    part = re.sub(r"\s*\[[^\]]*\]$", "", part.strip())  # "[H, W]" axis labels
    part = part.rsplit(": ", 1)[-1]  # "H, W: ..." labels
    part = re.sub(r"(?<=\d),(?=\d{3})", "", part)  # thousands separators
    if not part or not _NUMERIC.match(part.replace("floor", "").replace("ceil", "")):
        return None
    return _evaluate(part)


def checked_chains(steps: list[str]) -> int:
    """Assert every numeric chain in ``steps`` is consistent; return how many were checked."""
    checked = 0
    for step in steps:
        for clause in step.split(";"):
            values = [v for v in (_value(p) for p in clause.split(" = ")) if v is not None]
            if len(values) >= 2:
                assert len(set(values)) == 1, f"inconsistent arithmetic in {step!r}: {values}"
                checked += 1
    return checked
