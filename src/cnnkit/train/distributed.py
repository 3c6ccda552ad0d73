"""The distributed context of a run: which process this is, of how many.

One process today (rank 0 of 1), so every method below is the identity; the loop still asks
it wherever several processes would differ, so that a data-parallel launcher plugs in here
without touching the loop: the training loader takes this rank's shard, only the main rank
logs and writes checkpoints, and every rank stops when any rank decides to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnnkit.errors import ConfigError

if TYPE_CHECKING:
    from cnnkit.data import ImageDataset


@dataclass(frozen=True)
class Distributed:
    """Rank ``rank`` of ``world_size`` processes training one model together."""

    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ConfigError(
                f"distributed context: rank {self.rank} of {self.world_size} processes"
            )

    @property
    def is_main(self) -> bool:
        """Whether this process logs and writes the run folder (rank 0)."""
        return self.rank == 0

    def shard(self, dataset: ImageDataset) -> ImageDataset:
        """This rank's training images: every ``world_size``-th one from ``rank`` on."""
        if self.world_size == 1:
            return dataset
        return dataset.subset(range(self.rank, len(dataset), self.world_size))

    def agree_to_stop(self, stop: bool) -> bool:
        """Whether all ranks stop: any rank's reason stops every rank (alone: its own)."""
        return stop
