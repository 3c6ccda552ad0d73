"""The distillation settings of a run (E6), read from its config in one place, without torch.

:func:`distill_settings` is the one reader of TrainConfig's E6 fields (``teacher``,
``teacher_model``, ``distill_alpha``, ``distill_temperature``); train/distill.py takes the
:class:`DistillSettings` it returns. :func:`refuse_recorded_teacher` keeps a file (a
``--config`` JSON or a checkpoint) from naming the teacher's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnnkit.train.config import USER_MODEL_PREFIX

if TYPE_CHECKING:
    from cnnkit.train.config import DistillationConfig


@dataclass(frozen=True)
class DistillSettings:
    """What distillation needs: where the teacher is, its code, and the loss's A and T."""

    checkpoint: str | None  # the teacher's checkpoint file or run folder (None: a module's weights)
    code: str | None  # package.module:callable, user:<module>.<class>, or None (the zoo name)
    alpha: float
    temperature: float

    @property
    def source(self) -> str:
        """How the teacher is named in messages: its checkpoint, or its code."""
        return self.checkpoint if self.checkpoint is not None else str(self.code)


def distill_settings(config: DistillationConfig) -> DistillSettings | None:
    """The run's distillation settings, or None when it has no teacher."""
    if config.teacher is None and config.teacher_model is None:
        return None
    return DistillSettings(
        checkpoint=config.teacher,
        code=config.teacher_model,
        alpha=config.distill_alpha,
        temperature=config.distill_temperature,
    )


def teacher_changes(teacher: Any) -> dict[str, Any]:
    """The config fields that ``fit(teacher=...)`` sets: a path, or the user's own module.

    A module records ``teacher_model = user:<module>.<class>`` (like ``fit(model=module)``), a
    name no file can turn back into code: a resumed run needs the module again.
    """
    if teacher is None:
        return {}
    if isinstance(teacher, str) or hasattr(teacher, "__fspath__"):
        return {"teacher": str(teacher)}
    kind = type(teacher)
    return {"teacher_model": f"{USER_MODEL_PREFIX}{kind.__module__}.{kind.__qualname__}"}


def refuse_recorded_teacher(code: Any, source: str, error: type[Exception]) -> None:
    """A teacher's code read from a file may not be ``module:callable``: that is code to run.

    The same rule as the student's model (``refuse_recorded_model``): the user allows the code
    by naming it themselves, ``--teacher-model SPEC`` or ``fit(teacher=<module>)``.
    """
    if not isinstance(code, str):
        return
    if code.startswith(USER_MODEL_PREFIX):
        raise error(
            f"{source}: the run was distilled from the user's own nn.Module "
            f"{code[len(USER_MODEL_PREFIX) :]}; give it again in Python (teacher=<the module>)"
        )
    if ":" in code:
        raise error(
            f"{source}: names the teacher's code {code!r}, which cnnkit would import and call; "
            f"a file may only name zoo models. If you trust that code, name it yourself: "
            f"--teacher-model {code}"
        )
