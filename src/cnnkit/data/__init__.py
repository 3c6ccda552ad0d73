"""cnnkit.data: datasets found or downloaded and verified, held in memory, batched on the device.

- :func:`load_dataset` (``fashion_mnist``, ``mnist``, ``kmnist``, ``cifar10``, ``cifar100``,
  ``folder:<path>``) -> :class:`ImageDataset`; :func:`image_folder` for ImageFolder trees.
- :func:`train_val_split` (seeded, matches ``torch.utils.data.random_split``),
  :func:`channel_stats` (exact per-channel mean/std).
- :class:`DeviceLoader` and the batched transforms in :mod:`cnnkit.data.transforms`.
- :func:`fetch_dataset`, :func:`dataset_info` for ``cnnkit data fetch|info``.
"""

from __future__ import annotations

from cnnkit.data.dataset import ImageDataset, train_val_split
from cnnkit.data.download import Digest, download_file
from cnnkit.data.folder import image_folder
from cnnkit.data.idx import read_idx
from cnnkit.data.info import DatasetInfo, dataset_info
from cnnkit.data.load import FetchResult, fetch_dataset, list_datasets, load_dataset
from cnnkit.data.loader import DeviceLoader
from cnnkit.data.sources import DATASETS, user_cache_dir
from cnnkit.data.stats import channel_stats

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DeviceLoader",
    "Digest",
    "FetchResult",
    "ImageDataset",
    "channel_stats",
    "dataset_info",
    "download_file",
    "fetch_dataset",
    "image_folder",
    "list_datasets",
    "load_dataset",
    "read_idx",
    "train_val_split",
    "user_cache_dir",
]
