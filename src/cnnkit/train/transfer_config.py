"""The E4 (transfer learning) settings of a run, read from its ``TrainConfig`` in one place.

Kept apart from :mod:`cnnkit.train.transfer` (which needs torch) because ``TrainConfig``
validates them on construction, and ``cnnkit train --help`` must not import torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnnkit.errors import ConfigError

if TYPE_CHECKING:
    from cnnkit.train.config import TransferConfig

MODES = ("features", "partial", "full")


@dataclass(frozen=True)
class TransferSettings:
    """The E4 settings of a run (the ``TrainConfig`` fields of the same names).

    ``mode`` is resolved: ``partial`` when only ``unfreeze_from`` is given, ``full`` when
    nothing else is. Construction checks that the options fit together (one line each).
    """

    init_from: str | None = None
    mode: str = "full"
    unfreeze_from: str | None = None
    head_lr: float | None = None
    backbone_lr: float | None = None
    layer_decay: float | None = None
    freeze_bn: bool = False
    pretrained: bool = False  # torchvision's published ImageNet weights of the run's model

    def __post_init__(self) -> None:
        if self.pretrained and self.init_from is not None:
            raise ConfigError(
                f"--pretrained: starts from torchvision's published weights; --init-from "
                f"{self.init_from} names other weights: give one of them"
            )
        if self.mode not in MODES:
            raise ConfigError(f"--finetune-mode: must be one of {', '.join(MODES)}")
        for name in ("head_lr", "backbone_lr"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"--{name.replace('_', '-')}: must be > 0, got {value}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ConfigError(f"--layer-decay: must be in (0, 1], got {self.layer_decay}")
        if self.unfreeze_from is not None and self.mode != "partial":
            raise ConfigError(
                f"--unfreeze-from: only with --finetune-mode partial (got {self.mode})"
            )
        if self.layer_decay is not None and (
            self.head_lr is not None or self.backbone_lr is not None
        ):
            raise ConfigError(
                "--layer-decay: give either --layer-decay or --head-lr/--backbone-lr, not both"
            )
        if self.mode == "features" and (
            self.backbone_lr is not None or self.layer_decay is not None
        ):
            flag = "--backbone-lr" if self.backbone_lr is not None else "--layer-decay"
            raise ConfigError(
                f"{flag}: --finetune-mode features trains only the head (use --head-lr or --lr)"
            )


def transfer_settings(config: TransferConfig) -> TransferSettings | None:
    """The run's :class:`TransferSettings`, or None when no E4 field is set (a plain run)."""
    values = (
        config.init_from, config.unfreeze_from, config.head_lr, config.backbone_lr,
        config.layer_decay,
    )  # fmt: skip
    mode = config.finetune_mode
    if (
        mode is None
        and all(v is None for v in values)
        and not (config.freeze_bn or config.pretrained)
    ):
        return None
    if mode is None:
        mode = "partial" if config.unfreeze_from is not None else "full"
    return TransferSettings(
        mode=mode,
        freeze_bn=config.freeze_bn,
        init_from=config.init_from,
        unfreeze_from=config.unfreeze_from,
        head_lr=config.head_lr,
        backbone_lr=config.backbone_lr,
        layer_decay=config.layer_decay,
        pretrained=config.pretrained,
    )
