"""The exact ``cnnkit train`` command line that reproduces a run from its config.json.

Every setting that differs from :class:`~cnnkit.train.TrainConfig`'s default becomes its flag
(the flags are generated from the same fields, cli/train.py): booleans as ``--x``/``--no-x``,
``None`` as ``none``, lists comma-separated with ``repr`` floats (which parse back exactly),
dicts as JSON. The output folder is the run's folder with ``-again`` appended, since a folder
that holds a run is never overwritten.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import MISSING, fields
from typing import Any

FLAG_NAMES = {"out_dir": "--out"}


def reproduce_command(config: dict[str, Any], out_dir: str) -> tuple[str, list[str]]:
    """``(command, unknown)``: the command line and the config keys no flag sets (a run from
    another cnnkit version); ``unknown`` is empty when the command is exact."""
    from cnnkit.train.config import TrainConfig

    known = {item.name: item for item in fields(TrainConfig)}
    words = ["cnnkit", "train"]
    for name, item in known.items():
        if name == "out_dir" or name not in config:
            continue
        default = item.default if item.default is not MISSING else item.default_factory()
        value = config[name]
        if value == default and type(value) is type(default):
            continue
        flag = FLAG_NAMES.get(name, "--" + name.replace("_", "-"))
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + flag[2:])
        elif value is None:
            words += [flag, "none"]
        elif isinstance(value, list):
            words += [flag, ",".join(repr(float(v)) for v in value)]
        elif isinstance(value, dict):
            words += [flag, json.dumps(value, separators=(",", ":"), sort_keys=True)]
        elif isinstance(value, float):
            words += [flag, repr(value)]
        else:
            words += [flag, str(value)]
    words += ["--out", out_dir]
    unknown = sorted(set(config) - set(known))
    return shlex.join(words), unknown
