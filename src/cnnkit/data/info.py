"""What ``cnnkit data info`` reports: where a dataset was found, its files, classes, statistics."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cnnkit.data._checks import require_path, require_str
from cnnkit.data.dataset import ImageDataset
from cnnkit.data.folder import image_folder
from cnnkit.data.load import FOLDER_PREFIX, get_source
from cnnkit.data.sources import find_split, not_found_error
from cnnkit.data.stats import channel_stats


@dataclass(frozen=True)
class FileInfo:
    path: str
    size_bytes: int
    verified: str


@dataclass(frozen=True)
class SplitInfo:
    """One split: image count, (C, H, W), per-channel mean/std on [0, 1] (computed)."""

    split: str
    count: int
    image_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_counts: tuple[int, ...]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    location: str
    files: list[FileInfo]
    classes: list[str]
    splits: list[SplitInfo]


def dataset_info(name: str, data_dir: str | os.PathLike[str] | None = None) -> DatasetInfo:
    """Find (never download) every split of ``name`` and describe it; nothing is typed in."""
    require_str("dataset_info", "name", name)
    require_path("dataset_info", "data_dir", data_dir, optional=True)
    if name.startswith(FOLDER_PREFIX):
        return _folder_info(name)
    source = get_source(name)
    files: dict[str, FileInfo] = {}
    splits, classes, locations = [], [], []
    for split in source.splits:
        found = find_split(source, split, data_dir)
        if found is None:
            raise not_found_error(source, split, data_dir)
        dataset, verified = source.read(found, split)
        for path in found.files:
            files.setdefault(
                str(path), FileInfo(str(path), path.stat().st_size, verified.get(path.name, "?"))
            )
        locations.append(str(found.folder))
        classes = dataset.classes
        splits.append(_split_info(dataset))
    location = locations[0] if len(set(locations)) == 1 else ", ".join(locations)
    return DatasetInfo(name, source.title, location, list(files.values()), classes, splits)


def _split_info(dataset: ImageDataset) -> SplitInfo:
    import torch

    mean, std = channel_stats(dataset)
    counts = torch.bincount(dataset.labels, minlength=dataset.num_classes)
    return SplitInfo(
        split=dataset.split,
        count=len(dataset),
        image_shape=dataset.image_shape,
        mean=mean,
        std=std,
        class_counts=tuple(int(c) for c in counts),
    )


def _folder_info(name: str) -> DatasetInfo:
    root = Path(name[len(FOLDER_PREFIX) :])
    split_names = [s for s in ("train", "val", "test") if (root / s).is_dir()] or ["train"]
    datasets = [image_folder(root, split) for split in split_names]
    return DatasetInfo(
        name=name,
        title="ImageFolder",
        location=str(root),
        files=[],
        classes=datasets[0].classes,
        splits=[_split_info(d) for d in datasets],
    )
