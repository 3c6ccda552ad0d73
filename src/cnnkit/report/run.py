"""What a run folder holds, read once and tolerantly: :class:`RunSummary`.

A run folder (docs/training.md) holds ``config.json``, ``metrics.csv``, ``final.json``,
``last.pt`` and ``best.pt``. Any of them may be missing (an interrupted run, an older cnnkit, a
copy without checkpoints); the summary records each absence as a sentence for the page. A folder
holding none of them is not a run: :func:`load_run` raises a one-line :class:`DataError`.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnkit.errors import ConfigError, DataError

RUN_FILES = ("config.json", "metrics.csv", "final.json", "last.pt", "best.pt")


@dataclass
class RunSummary:
    """A run folder's recorded facts; ``missing`` says, one sentence each, what is absent."""

    path: Path
    config: dict[str, Any] | None
    history: list[dict[str, float | None]]
    final: dict[str, Any] | None
    checkpoints: dict[str, Path]
    missing: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name or str(self.path)

    @property
    def classes(self) -> list[str]:
        return list((self.final or {}).get("classes") or [])

    @property
    def has_validation(self) -> bool:
        return any(row.get("val_top1") is not None for row in self.history)

    def setting(self, key: str, default: Any = None) -> Any:
        """A setting of the run: config.json first, then final.json (older runs)."""
        for source in (self.config, self.final):
            if source and source.get(key) is not None:
                return source[key]
        return default

    def evaluated_checkpoint(self) -> tuple[Path, str] | None:
        """The checkpoint file and weights key that final.json's test metrics came from.

        ``finish_run`` evaluates ``best.pt`` when ``evaluated_weights`` starts with ``best``;
        otherwise the last weights, which ``best.pt`` also holds when there was no validation
        split (``last.pt`` otherwise, under ``ema`` for an EMA run).
        """
        weights = str((self.final or {}).get("evaluated_weights", "last"))
        no_val = not (self.final or {}).get("val_images")
        if weights.startswith("best") or no_val:
            choice = ("best.pt", "model")
        else:
            choice = ("last.pt", "ema" if weights.endswith("EMA") else "model")
        if choice[0] in self.checkpoints:
            return self.checkpoints[choice[0]], choice[1]
        for name in ("best.pt", "last.pt"):  # the nearest weights we have
            if name in self.checkpoints:
                return self.checkpoints[name], "model"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "config": self.config,
            "history": self.history,
            "final": self.final,
            "checkpoints": {k: str(v) for k, v in self.checkpoints.items()},
            "missing": list(self.missing),
        }


def load_run(path: str | Path) -> RunSummary:
    """Read the run folder ``path``; raises DataError when it is no folder or holds no run."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: no such run folder")
    present = [name for name in RUN_FILES if (root / name).is_file()]
    if not present:
        raise DataError(
            f"{root}: not a run folder (none of {', '.join(RUN_FILES)}; "
            "cnnkit train --out DIR writes one)"
        )
    missing: list[str] = []
    config = _read_json(root / "config.json", missing)
    if config is not None:  # nested since the config's sections; flat before
        from cnnkit.train.config import flatten_settings

        try:
            config = flatten_settings(config, "config.json")
        except ConfigError as exc:
            missing.append(f"{exc}: left out")
            config = None
    final = _read_json(root / "final.json", missing)
    history = _read_metrics(root / "metrics.csv", missing)
    checkpoints = {name: root / name for name in ("best.pt", "last.pt") if (root / name).is_file()}
    if final is None and "final.json" not in " ".join(missing):
        missing.append(
            "final.json is missing: the run did not finish, so there are no test metrics"
        )
    if config is None and "config.json" not in " ".join(missing):
        missing.append("config.json is missing: the settings and the command are not known")
    if not history and "metrics.csv" not in " ".join(missing):
        missing.append("metrics.csv is missing: no curves")
    if "best.pt" not in checkpoints:
        missing.append("best.pt is missing" + ("" if checkpoints else " (and last.pt)"))
    summary = RunSummary(root, config, history, final, checkpoints, missing)
    if history and not summary.has_validation:
        missing.append("no validation split: the curves show training only")
    return summary


def _read_json(path: Path, missing: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        missing.append(f"{path.name} is unreadable ({type(exc).__name__}): left out")
        return None
    if not isinstance(value, dict):
        missing.append(f"{path.name} holds no JSON object: left out")
        return None
    return value


def _number(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read_metrics(path: Path, missing: list[str]) -> list[dict[str, float | None]]:
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        missing.append(f"metrics.csv is unreadable ({type(exc).__name__}): no curves")
        return []
    return [{key: _number(value) for key, value in row.items() if key} for row in rows]
