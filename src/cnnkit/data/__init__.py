"""cnnkit.data: datasets found or downloaded and verified, held in memory, batched on the device.

- :func:`load_dataset` (``fashion_mnist``, ``mnist``, ``kmnist``, ``cifar10``, ``cifar100``,
  ``digits`` and ``digits_8x8`` (scikit-learn's, bundled),
  ``folder:<path>``) -> :class:`ImageDataset`; :func:`image_folder` for ImageFolder trees.
- :func:`train_val_split` (seeded, matches ``torch.utils.data.random_split``),
  :func:`channel_stats` (exact per-channel mean/std).
- :class:`DeviceLoader` and the batched transforms in :mod:`cnnkit.data.transforms`.
- :func:`fetch_dataset`, :func:`dataset_info` for ``cnnkit data fetch|info``.

Names are imported lazily from the module that defines them, so that finding files, listing
datasets and reporting a bad name (``cnnkit data list``) do not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "DATASETS": "cnnkit.data.sources",
    "DatasetInfo": "cnnkit.data.info",
    "DeviceLoader": "cnnkit.data.loader",
    "Digest": "cnnkit.data.download",
    "FetchResult": "cnnkit.data.load",
    "ImageDataset": "cnnkit.data.dataset",
    "channel_stats": "cnnkit.data.stats",
    "dataset_info": "cnnkit.data.info",
    "download_file": "cnnkit.data.download",
    "fetch_dataset": "cnnkit.data.load",
    "image_folder": "cnnkit.data.folder",
    "list_datasets": "cnnkit.data.load",
    "load_dataset": "cnnkit.data.load",
    "read_idx": "cnnkit.data.idx",
    "train_val_split": "cnnkit.data.dataset",
    "user_cache_dir": "cnnkit.data.sources",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnkit.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*__all__, "transforms"])
