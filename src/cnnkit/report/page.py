"""Build the report pages: one run (:func:`build_report`) or runs side by side
(:func:`build_comparison`), and write them atomically (:func:`write_report`).

The builders compute everything into plain dicts and lists; the Jinja2 templates in
``templates/`` only lay them out (autoescaped: class names, module names and config strings
come from outside). The page is one file: pictures are data URIs, the style sheet and the small
sorting script are inline and allowed by their SHA-256 in a Content-Security-Policy meta tag that
forbids every other load (``default-src 'none'``).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import math
import platform
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from cnnkit._io import atomic_write_text
from cnnkit.errors import CnnkitError, ConfigError
from cnnkit.report.run import RunSummary, load_run

SECTIONS = (
    ("headline", "Headline"),
    ("curves", "Curves"),
    ("confusion", "Confusion matrix"),
    ("per-class", "Per-class metrics"),
    ("hardest", "Hardest test samples"),
    ("cam", "CAM overlays"),
    ("model", "Model"),
    ("fine-tuning", "Fine-tuning"),
    ("config", "Configuration and command"),
    ("environment", "Environment and seed"),
)
COMPARISON_SECTIONS = (
    ("runs", "Runs"),
    ("metrics", "Final metrics"),
    ("curves", "Curves"),
    ("config-diff", "Settings that differ"),
)
HEAT_LEVELS = 8
CELL_EXAMPLES = 3
MAX_CELLS = 60  # the largest confusions get images; with many classes the rest are counts only
HARDEST = 24


def build_report(run_dir: str | Path, *, cam: bool = True) -> str:
    """The HTML page of one run folder (see the module docstring)."""
    from cnnkit.report.figures import heat_colours

    run = load_run(run_dir)
    context: dict[str, Any] = {
        "title": f"cnnkit run {run.name}",
        "run": run,
        "sections": SECTIONS,
        "missing": list(run.missing),
        "headline": _headline(run),
        "curves": _curves(run),
        "heat_colours": heat_colours(HEAT_LEVELS),
    }
    test, reason = _recompute(run)
    if reason:
        context["missing"].append(reason)
    context.update(_test_sections(run, test))
    context["cam"] = _cam(test, cam)
    context["model"] = _model_summary(run, test)
    context["fine_tuning"] = _fine_tuning(run)
    context["config"] = _config(run)
    context["environment"] = _environment(run)
    return _render("run.html.j2", context)


def build_comparison(run_dirs: Sequence[str | Path]) -> str:
    """One page comparing runs: settings that differ, curves overlaid, final metrics."""
    from cnnkit.report.figures import Series, line_plot

    runs = [load_run(path) for path in run_dirs]
    labels = _labels(runs)
    metrics = [
        ("model", "model", "{}"),
        ("dataset", "dataset", "{}"),
        ("test_top1", "test top-1 (%)", "{:.2f}"),
        ("test_top5", "test top-5 (%)", "{:.2f}"),
        ("test_loss", "test loss", "{:.4f}"),
        ("best_val_top1", "best val top-1 (%)", "{:.2f}"),
        ("epochs", "epochs", "{}"),
        ("wall_seconds", "time (s)", "{:.1f}"),
        ("images_per_second", "train images/s", "{:,.0f}"),
        ("parameters", "parameters", "{:,}"),
        ("stopped", "stopped", "{}"),
    ]
    rows = [
        {
            "key": key,
            "label": label,
            "cells": [_fmt((run.final or {}).get(key), form) for run in runs],
            "raw": [json.dumps((run.final or {}).get(key)) for run in runs],
        }
        for key, label, form in metrics
    ]
    curves = []
    for key, title, ylabel in (
        ("train_loss", "training loss", "loss"),
        ("val_top1", "validation top-1", "top-1 (%)"),
        ("train_top1", "training top-1", "top-1 (%)"),
        ("lr", "learning rate (end of epoch)", "learning rate"),
    ):
        series = [
            Series(
                label,
                [r.get("epoch") or i + 1 for i, r in enumerate(run.history)],
                [r.get(key) for r in run.history],
            )
            for label, run in zip(labels, runs, strict=True)
        ]
        if any(v is not None for s in series for v in s.y):
            curves.append({"title": title, "uri": line_plot(title, ylabel, series)})
    context = {
        "title": "cnnkit runs: " + " vs ".join(labels),
        "sections": COMPARISON_SECTIONS,
        "runs": [
            {"label": label, "path": str(run.path), "missing": run.missing}
            for label, run in zip(labels, runs, strict=True)
        ],
        "labels": labels,
        "metrics": rows,
        "curves": curves,
        "config_diff": _config_diff(runs),
        "heat_colours": [],
    }
    return _render("compare.html.j2", context)


def write_report(
    run_dirs: str | Path | Sequence[str | Path], out: str | Path | None = None
) -> Path:
    """Build the page of one run (into ``RUN_DIR/report.html`` by default) or the comparison
    of several (``out`` required), write it atomically and return its path."""
    dirs = [run_dirs] if isinstance(run_dirs, str | Path) else list(run_dirs)
    if not dirs:
        raise ConfigError("report: give at least one run folder")
    if len(dirs) == 1:
        html = build_report(dirs[0])
        target = Path(out) if out is not None else Path(dirs[0]) / "report.html"
    else:
        if out is None:
            raise ConfigError("--out: a comparison of several runs needs an output file")
        html = build_comparison(dirs)
        target = Path(out)
    if target.is_dir():  # --out DIR: the page goes inside it
        target = target / "report.html"
    atomic_write_text(target, html)
    return target


# --- the parts of a run page -------------------------------------------------------------


def _fmt(value: Any, form: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    try:
        return form.format(value)
    except (ValueError, TypeError):
        return str(value)


def _headline(run: RunSummary) -> list[dict[str, Any]]:
    final = run.final or {}
    items = [
        ("model", "model", run.setting("model"), "{}"),
        ("dataset", "dataset", run.setting("dataset"), "{}"),
        ("test_top1", "test top-1", final.get("test_top1"), "{:.2f}%"),
        ("test_top5", "test top-5", final.get("test_top5"), "{:.2f}%"),
        ("test_loss", "test loss", final.get("test_loss"), "{:.4f}"),
        ("wall_seconds", "time", final.get("wall_seconds"), "{:.1f} s"),
        ("images_per_second", "train images/s", final.get("images_per_second"), "{:,.0f}"),
        ("stopped", "stopped", final.get("stopped"), "{}"),
        ("epochs", "epochs", final.get("epochs"), "{}"),
        ("evaluated_weights", "evaluated weights", final.get("evaluated_weights"), "{}"),
        ("parameters", "parameters", final.get("parameters"), "{:,}"),
    ]
    return [
        {"key": key, "label": label, "text": _fmt(value, form), "raw": json.dumps(value)}
        for key, label, value, form in items
    ]


def _curves(run: RunSummary) -> list[dict[str, str]]:
    from cnnkit.report.figures import Series, line_plot

    if not run.history:
        return []
    epochs = [row.get("epoch") or i + 1 for i, row in enumerate(run.history)]

    def series(key: str, label: str) -> Series:
        return Series(label, epochs, [row.get(key) for row in run.history])

    plots = [
        ("loss", "loss", [series("train_loss", "train"), series("val_loss", "validation")]),
        (
            "top-1 accuracy",
            "top-1 (%)",
            [series("train_top1", "train"), series("val_top1", "validation")],
        ),
        ("learning rate (end of epoch)", "learning rate", [series("lr", "lr")]),
    ]
    return [{"title": t, "uri": line_plot(t, y, s)} for t, y, s in plots]


def _recompute(run: RunSummary) -> tuple[Any, str | None]:
    from cnnkit.report.predictions import recompute

    try:
        return recompute(run), None
    except CnnkitError as exc:
        return None, f"test predictions could not be recomputed ({exc}): no images, no matrix"


def _test_sections(run: RunSummary, test: Any) -> dict[str, Any]:
    """Confusion matrix, per-class table, hardest samples: all from the recomputed predictions."""
    from cnnkit.report.figures import heat_levels, image_uri

    if test is None:
        return {"confusion": None, "per_class": None, "hardest": None, "predictions": None}
    predictions = test.predictions
    classes = predictions.classes
    matrix = predictions.confusion()
    levels = heat_levels(matrix, HEAT_LEVELS)
    images = test.images.images
    thumbs: dict[int, str] = {}

    def thumb(index: int) -> str:
        if index not in thumbs:
            thumbs[index] = image_uri(images[index])
        return thumbs[index]

    # The largest confusions first (stable: ties keep class order), at most MAX_CELLS of them.
    off_diagonal = sorted(
        (
            (count, true, predicted)
            for true, row in enumerate(matrix)
            for predicted, count in enumerate(row)
            if true != predicted and count
        ),
        key=lambda item: -item[0],
    )[:MAX_CELLS]
    cells = [
        {
            "id": f"cell-{true}-{predicted}",
            "true": classes[true],
            "predicted": classes[predicted],
            "count": count,
            "examples": [
                {"index": i, "uri": thumb(i), "confidence": float(predictions.confidence[i])}
                for i in predictions.cell_examples(true, predicted, CELL_EXAMPLES)
            ],
        }
        for count, true, predicted in off_diagonal
    ]
    recorded = (run.final or {}).get("confusion")
    stats = predictions.class_stats()
    worst_first = sorted(
        stats,
        key=lambda s: (
            math.inf if math.isnan(s.recall) else s.recall,
            math.inf if math.isnan(s.f1) else s.f1,
        ),
    )
    hardest = [
        {
            "index": i,
            "uri": thumb(i),
            "true": classes[int(predictions.labels[i])],
            "predicted": classes[int(predictions.predicted[i])],
            "confidence": float(predictions.confidence[i]),
            "loss": float(predictions.loss[i]),
        }
        for i in predictions.hardest(HARDEST)
    ]
    final = run.final or {}
    return {
        "confusion": {
            "classes": classes,
            "matrix": matrix,
            "levels": levels,
            "cells": cells,
            "source": predictions.source,
            "top1": predictions.top1,
            "top5": predictions.top5,
            "final_top1": final.get("test_top1"),
            "matches_final": recorded == matrix if recorded is not None else None,
            "linked": {cell["id"] for cell in cells},
        },
        "per_class": [
            {
                "name": s.name,
                "precision": s.precision,
                "recall": s.recall,
                "f1": s.f1,
                "support": s.support,
                "errors": s.errors,
            }
            for s in worst_first
        ],
        "hardest": hardest,
        "predictions": {
            "labels": predictions.labels.tolist(),
            "predicted": predictions.predicted.tolist(),
            "classes": classes,
        },
    }


def _cam(test: Any, enabled: bool) -> dict[str, Any]:
    from cnnkit.report.cam import cam_section

    if test is None:
        return {"tiles": [], "message": "no test predictions, so no CAM overlays"}
    if not enabled:
        return {"tiles": [], "message": "CAM overlays were not asked for"}
    section = cam_section(test)
    return {"tiles": section.tiles, "message": section.message, "method": section.method}


def _shape(rf: Any, is_global: Any) -> str:
    if rf is None:
        return "–"
    if is_global and all(is_global):
        return "global"
    return "×".join(str(v) for v in rf)


def _model_summary(run: RunSummary, test: Any) -> dict[str, Any]:
    from cnnkit.analysis import summarize
    from cnnkit.report.predictions import load_evaluated_model

    try:
        if test is not None:
            model, shape = test.model, tuple(test.images.image_shape)
        else:
            model, saved, path, _ = load_evaluated_model(run)
            if "image_shape" not in saved:
                return {"rows": [], "message": f"no model summary: {path} lacks 'image_shape'"}
            shape = tuple(saved["image_shape"])
        summary = summarize(model, shape, depth=1)
    except CnnkitError as exc:
        return {"rows": [], "message": f"no model summary: {exc}"}
    rows = [
        {
            "name": row.name,
            "type": row.type,
            "output": "×".join(str(v) for v in row.output_shape[1:]),
            "params": row.params,
            "macs": row.macs,
            "rf": _shape(row.rf, row.rf_global),
        }
        for row in summary.layers
    ]
    total = summary.total
    return {
        "rows": rows,
        "input": "×".join(str(v) for v in shape),
        "params": total.params,
        "macs": total.macs,
        "rf": _shape(total.rf, total.rf_global),
        "message": None,
    }


# the config.json settings that make a run a fine-tuning run (train/transfer_config.py)
_TRANSFER_SETTINGS = (
    "init_from", "pretrained", "finetune_mode", "unfreeze_from", "head_lr", "backbone_lr",
    "layer_decay", "freeze_bn",
)  # fmt: skip


def _fine_tuning(run: RunSummary) -> dict[str, Any]:
    """The parameter-group table final.json's ``transfer`` records (train/transfer.py's
    ``TransferPlan.to_dict``): per stage its parameters, those that train, the peak learning
    rate or ``frozen``, and whether its BatchNorm statistics train. Read tolerantly: a record
    that is not the table is said, not shown."""
    record = (run.final or {}).get("transfer")
    if record is None:
        if any(run.setting(key) for key in _TRANSFER_SETTINGS):
            message = (
                "final.json does not record the parameter groups of this fine-tuning run "
                "(unfinished, or from an older cnnkit): its run header printed them."
            )
        else:
            message = "Not a fine-tuning run: every parameter trained, at the run's learning rate."
        return {"rows": [], "notes": [], "message": message}
    rows = record.get("rows") if isinstance(record, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        return {
            "rows": [],
            "notes": [],
            "message": "final.json's fine-tuning record is not a table of stages: left out.",
        }
    shown = []
    for row in rows:
        lr = row.get("lr")
        frozen = row.get("frozen", lr is None) is True or lr is None
        shown.append(
            {
                "stage": str(row.get("stage", "–")),
                "parameters": row.get("parameters"),
                "trainable": row.get("trainable"),
                "lr": "frozen" if frozen else _fmt(lr, "{:.3g}"),
                "raw_lr": json.dumps(None if frozen else lr),
                "frozen": frozen,
                "batchnorm": {"eval": "eval (statistics frozen)", "train": "train", "-": "–"}.get(
                    str(row.get("batchnorm")), str(row.get("batchnorm"))
                ),
            }
        )
    notes = record.get("notes")
    return {
        "rows": shown,
        "mode": str(record.get("mode", "–")),
        "head": str(record.get("head", "–")),
        "notes": [str(n) for n in notes] if isinstance(notes, list) else [],
        "message": None,
    }


def _config(run: RunSummary) -> dict[str, Any]:
    from cnnkit.report.command import reproduce_command

    if run.config is None:
        return {"items": [], "command": None, "unknown": []}
    command, unknown = reproduce_command(run.config, str(run.path) + "-again")
    return {
        "items": [(key, json.dumps(value)) for key, value in run.config.items()],
        "command": command,
        "unknown": unknown,
    }


def _environment(run: RunSummary) -> dict[str, Any]:
    import torch

    from cnnkit import __version__
    from cnnkit.train.provenance import read_environment

    final = run.final or {}
    # environment.json (every run since it was added) first; final.json's few fields otherwise
    env = read_environment(run.path)
    recorded: list[tuple[str, Any]] = [
        ("cnnkit", env.cnnkit if env else final.get("cnnkit")),
        ("torch", env.torch if env else final.get("torch")),
        ("Python", env.python if env else final.get("python")),
        ("device", env.device if env else final.get("device")),
        ("threads", env.threads if env else final.get("threads")),
        ("precision", env.precision if env else final.get("precision")),
        ("machine", f"{env.cpu_model}, {env.cpu_count} cores, {env.platform}" if env else None),
        ("command", " ".join(env.command) if env else None),
        (
            "git commit",
            (env.git_commit + (" (modified)" if env.git_dirty else ""))
            if env and env.git_commit
            else None,
        ),
        (
            "data",
            ", ".join(f"{d.path} sha256 {d.sha256[:12]}" if d.sha256 else d.path for d in env.data)
            if env and env.data
            else None,
        ),
        ("seed", run.setting("seed")),
        ("deterministic", run.setting("deterministic")),
    ]
    built = [
        ("cnnkit", __version__),
        ("torch", torch.__version__),
        ("Python", platform.python_version()),
        ("machine", f"{platform.machine()}, {platform.system()} {platform.release()}"),
        ("processor", platform.processor() or "–"),
        ("built", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    return {
        "recorded": [(k, "not recorded by the run" if v is None else str(v)) for k, v in recorded],
        "built": built,
        "seed": run.setting("seed"),
    }


# --- the comparison ----------------------------------------------------------------------


def _labels(runs: Sequence[RunSummary]) -> list[str]:
    names = [run.name for run in runs]
    if len(set(names)) == len(names):
        return names
    return [str(run.path) for run in runs]


def _config_diff(runs: Sequence[RunSummary]) -> list[dict[str, Any]]:
    """The settings whose values differ between the runs (a missing one shows as '–')."""
    keys: list[str] = []
    for run in runs:
        for key in run.config or {}:
            if key not in keys and key != "out_dir":
                keys.append(key)
    rows = []
    for key in keys:
        values = [(run.config or {}).get(key, _ABSENT) for run in runs]
        shown = ["–" if v is _ABSENT else json.dumps(v) for v in values]
        if len(set(shown)) > 1:
            rows.append({"key": key, "values": shown})
    return rows


_ABSENT = object()


# --- rendering ---------------------------------------------------------------------------


def _asset(name: str) -> str:
    return resources.files("cnnkit.report").joinpath("templates", name).read_text("utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _render(template: str, context: dict[str, Any]) -> str:
    """Render ``template`` with autoescaping; the inline style and script get CSP hashes."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cnnkit.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda value, form="{:,}": _fmt(value, form)
    env.filters["pct"] = lambda value: _fmt(None if value is None else 100 * value, "{:.1f}")
    heat = "".join(
        f".h{level}{{background:{bg};color:{fg}}}"
        for level, (bg, fg) in enumerate(context["heat_colours"])
    )
    style = "\n" + _asset("report.css") + heat + "\n"
    script = "\n" + _asset("report.js") + "\n"
    csp = (
        "default-src 'none'; img-src data:; "
        f"style-src {_csp_hash(style)}; script-src {_csp_hash(script)}; "
        "base-uri 'none'; form-action 'none'"
    )
    return env.get_template(template).render(
        **context, style=style, script=script, csp=csp, cnnkit_version=_version()
    )


def _version() -> str:
    from cnnkit import __version__

    return __version__
