"""``load_dataset`` and ``fetch_dataset``: a dataset by name, found locally or downloaded (D1).

Names: ``fashion_mnist``, ``mnist``, ``kmnist``, ``cifar10``, ``cifar100``, ``digits``,
``digits_8x8`` (the registry in
:mod:`cnnkit.data.sources`), and ``folder:<path>`` for an ImageFolder tree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cnnkit.data import cifar, digits, mnist  # noqa: F401  (registers the named datasets)
from cnnkit.data._checks import require_bool, require_path, require_str
from cnnkit.data.dataset import ImageDataset
from cnnkit.data.download import Digest, download_file
from cnnkit.data.folder import image_folder
from cnnkit.data.sources import (
    DATASETS,
    DatasetSource,
    Found,
    download_folder,
    find_split,
    not_found_error,
)
from cnnkit.errors import ConfigError

FOLDER_PREFIX = "folder:"


def list_datasets() -> list[str]:
    """Registered dataset names (``folder:<path>`` is accepted besides these)."""
    return DATASETS.names()


def get_source(name: str) -> DatasetSource:
    """The registered source ``name``; an unknown name raises UnknownNameError (close matches)."""
    require_str("get_source", "name", name)
    return DATASETS.get(name)


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> ImageDataset:
    """Load a split of a named dataset (or ``folder:<path>``) as an :class:`ImageDataset`.

    Files are searched in ``data_dir``, ``$CNNKIT_DATA``, the user cache and
    ``/usr/share/datasets/<name>`` (order and layouts: :mod:`cnnkit.data.sources`), verified
    against the published checksums, decoded, and remembered in the user cache so that the next
    load takes milliseconds. With ``download=True`` missing files are downloaded from the official
    mirrors (checksummed, resumable); otherwise the error lists every folder searched.

    Example: ``load_dataset("fashion_mnist", "train")`` gives 60000 (1, 28, 28) images whose
    first labels are 9, 0, 0, 3, 0, 2, 7, 2, 5, 5 (reference-figures.md).
    """
    require_str("load_dataset", "name", name)
    require_str("load_dataset", "split", split)
    require_path("load_dataset", "data_dir", data_dir, optional=True)
    require_bool("load_dataset", "download", download)
    if name.startswith(FOLDER_PREFIX):
        return image_folder(name[len(FOLDER_PREFIX) :], split)
    source = get_source(name)
    found = find_split(source, split, data_dir)
    if found is None:
        if not download:
            raise not_found_error(source, split, data_dir)
        fetch_dataset(name, data_dir)
        found = find_split(source, split, data_dir)
        if found is None:  # downloaded, yet not where the search looks: a bug, say so
            raise not_found_error(source, split, data_dir)
    return source.read(found, split)[0]


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch_dataset` did: per split, where the files are; per file name, how it
    was verified."""

    name: str
    found: dict[str, Found]
    downloaded: list[Path]
    verified: dict[str, str]


def fetch_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    mirrors: Sequence[str] = (),
    report: Callable[[str], None] | None = None,
) -> FetchResult:
    """Make every split of ``name`` available locally and verified; download what is missing.

    Files already found (search order of :mod:`cnnkit.data.sources`) are verified; missing
    ones are downloaded into ``<data_dir or $CNNKIT_DATA or user cache>/<name>`` from
    ``mirrors`` (tried first) and then the dataset's official mirrors, each checked against the
    published MD5 (:func:`cnnkit.data.download.download_file`).
    """
    require_str("fetch_dataset", "name", name)
    require_path("fetch_dataset", "data_dir", data_dir, optional=True)
    if (
        not isinstance(mirrors, Sequence)
        or isinstance(mirrors, str)
        or not all(isinstance(m, str) for m in mirrors)
    ):
        raise ConfigError(
            f"fetch_dataset: mirrors must be a sequence of URL strings, got {mirrors!r}"
        )
    if report is not None and not callable(report):
        raise ConfigError(f"fetch_dataset: report must be a callable or None, got {report!r}")
    source = get_source(name)
    urls_for = [m if m.endswith("/") else m + "/" for m in (*mirrors, *source.mirrors)]
    target = download_folder(source, data_dir)
    downloaded: list[Path] = []
    found: dict[str, Found] = {}
    verified: dict[str, str] = {}
    for split, files in source.splits.items():
        located = find_split(source, split, data_dir)
        if located is None:
            for remote in files:
                destination = target / remote.name
                if destination.is_file():
                    continue  # downloaded for another split (CIFAR's one archive)
                urls = [base + remote.name for base in urls_for]
                downloaded.append(
                    download_file(urls, destination, Digest("md5", remote.md5), report=report)
                )
            located = find_split(source, split, data_dir)
            if located is None:
                raise not_found_error(source, split, data_dir)
        found[split] = located
        verified.update(source.read(located, split)[1])
    return FetchResult(name=name, found=found, downloaded=downloaded, verified=verified)
