"""The doctor before training: ``cnnkit train`` runs the static and config rules on the model
its config names (built on the meta device: free) and prints warnings and errors.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from cnnkit.doctor.checks import CHECKS
from cnnkit.doctor.examine import examine
from cnnkit.doctor.findings import Report
from cnnkit.errors import CnnkitError, DataError

if TYPE_CHECKING:
    from cnnkit.train.config import TrainConfig


def examine_config(
    config: TrainConfig, image_shape: tuple[int, ...] | None = None, num_classes: int | None = None
) -> Report | None:
    """Static and config rules on ``config``'s model at its dataset's image shape.

    The shape and class count come from the dataset's test split when not given (a local
    read, never a download); ``None`` when they cannot be known without downloading.
    """
    if image_shape is None or num_classes is None:
        from cnnkit.data import load_dataset

        try:
            test = load_dataset(
                config.data.dataset, "test", data_dir=config.data.data_dir, download=False
            )
        except DataError:
            return None
        image_shape, num_classes = test.image_shape, len(test.classes)
    kwargs = {
        "num_classes": num_classes,
        "in_channels": image_shape[0],
        **config.model.model_kwargs,
    }
    if isinstance(kwargs.get("widths"), list):  # JSON lists; the zoo takes tuples (train too)
        kwargs["widths"] = tuple(kwargs["widths"])

    def factory():
        from cnnkit.models import resolve_model

        return resolve_model(config.model.model, **kwargs)

    rules = [str(k) for k, item in CHECKS.items() if "data" not in item.evidence
             and "probe" not in item.evidence]  # fmt: skip
    return examine(factory, image_shape, config=config, rules=rules, name=config.model.model)


def print_before_training(
    config: TrainConfig,
    out: TextIO | None = None,
    image_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
) -> Report | None:
    """Run :func:`examine_config` and print its warnings and errors, one line each, to
    ``out`` (stderr); infos are left to ``cnnkit doctor``."""
    stream = out if out is not None else sys.stderr
    try:
        report = examine_config(config, image_shape, num_classes)
    except CnnkitError:
        raise  # the run would fail the same way: say it once, now
    except Exception as error:  # a doctor bug must not stop a training run
        print(f"cnnkit doctor: skipped ({type(error).__name__}: {error})", file=stream)
        return None
    if report is None:
        return None
    for finding in report.at_least("warning"):
        print(
            f"cnnkit doctor: {finding.severity}: {finding.rule} at {finding.where}: "
            f"{finding.message} (fix: {finding.fix})",
            file=stream,
        )
    return report
