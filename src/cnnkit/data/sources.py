"""Where dataset files are looked for, and the registry of named datasets.

Search order for the files of a named dataset (the first folder holding all files of a split wins):

1. ``data_dir`` (``--data-dir``): the folder itself, then its sub-folders named after the dataset
   (``fashion_mnist``, ``fashion-mnist``) and torchvision's layout (``FashionMNIST/raw``);
2. ``$CNNKIT_DATA``, the same way;
3. the user cache, ``$XDG_CACHE_HOME/cnnkit/<name>`` (default ``~/.cache/cnnkit/<name>``), where
   downloads go when neither of the above is given;
4. ``/usr/share/datasets/<name>``, where Debian's ``dataset-fashion-mnist`` package installs
   the real Fashion-MNIST files;
5. files an installed package ships (:meth:`DatasetSource.bundled`: scikit-learn's digits).

When nothing is found and downloading is allowed, files are downloaded into ``<root>/<name>``
where root is ``data_dir``, else ``$CNNKIT_DATA``, else the user cache.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnnkit._registry import Registry
from cnnkit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from cnnkit.data.dataset import ImageDataset

SYSTEM_DATASETS = Path("/usr/share/datasets")


@dataclass(frozen=True)
class RemoteFile:
    """One published file of a dataset.

    Attributes:
        name: file name as published (``"train-images-idx3-ubyte.gz"``).
        md5: the publisher's MD5 of that file; a download must match it.
        payload_sha256: SHA-256 of the decompressed content, when known. Repackaged copies (Debian
            recompresses the gzip files) keep this digest while their MD5 changes.
    """

    name: str
    md5: str
    payload_sha256: str | None = None


@dataclass(frozen=True)
class Found:
    """The files of one split, as found on disk (``files`` in the order the reader needs)."""

    folder: Path
    files: tuple[Path, ...]


@dataclass(frozen=True)
class DatasetSource:
    """A named dataset: its classes, published files, mirrors and local folder names.

    Subclasses say how a folder is searched (:meth:`find_in`) and how files become an
    :class:`ImageDataset` (:meth:`read`).

    Attributes:
        name: registry name (``"fashion_mnist"``).
        title: human name (``"Fashion-MNIST"``).
        classes: class names, index = label.
        splits: split name -> the published files that make it.
        mirrors: base URLs, tried in order; a file's URL is ``mirror + file name``.
        folders: sub-folders of a root that may hold the files (the torchvision layout too).
        system_folder: folder under /usr/share/datasets a system package installs, if any.
        reference: where the URLs and checksums are published.
    """

    name: str
    title: str
    classes: tuple[str, ...]
    splits: Mapping[str, tuple[RemoteFile, ...]]
    mirrors: tuple[str, ...]
    folders: tuple[str, ...]
    system_folder: str | None
    reference: str

    def find_in(self, folder: Path, split: str) -> Found | None:
        raise NotImplementedError

    def read(self, found: Found, split: str) -> tuple[ImageDataset, dict[str, str]]:
        """The split's dataset and, per file, how it was verified."""
        raise NotImplementedError

    def bundled(self, split: str) -> Found | None:
        """Files an installed package ships (scikit-learn's digits), found after every folder."""
        return None

    def remote_files(self) -> list[RemoteFile]:
        """Every published file of the dataset, once (CIFAR's splits share one archive)."""
        seen: dict[str, RemoteFile] = {}
        for files in self.splits.values():
            for remote in files:
                seen.setdefault(remote.name, remote)
        return list(seen.values())

    def identity(self, split: str) -> list[str]:
        """What a decoded split depends on besides its files: name, split, expected digests."""
        digests = [f"{r.name}:{r.md5}:{r.payload_sha256}" for r in self.splits[split]]
        return [self.name, split, *digests]

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise ConfigError(
                f"{self.name}: unknown split {split!r}; choose from {', '.join(self.splits)}"
            )


DATASETS: Registry[DatasetSource] = Registry("dataset")


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cnnkit``, or ``~/.cache/cnnkit`` (the XDG base-directory default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnnkit"


def user_roots(data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """The roots a user named: ``data_dir``, then ``$CNNKIT_DATA``."""
    roots = [Path(data_dir).expanduser()] if data_dir is not None else []
    if os.environ.get("CNNKIT_DATA"):
        roots.append(Path(os.environ["CNNKIT_DATA"]).expanduser())
    return roots


def search_folders(source: DatasetSource, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Folders searched for ``source``'s files, in order (see the module docstring)."""
    folders: list[Path] = []
    for root in user_roots(data_dir):
        folders.append(root)
        folders.extend(root / sub for sub in source.folders)
    folders.append(user_cache_dir() / source.name)
    if source.system_folder is not None:
        folders.append(SYSTEM_DATASETS / source.system_folder)
    unique: dict[Path, None] = {}
    for folder in folders:
        unique.setdefault(folder.expanduser(), None)
    return list(unique)


def download_folder(source: DatasetSource, data_dir: str | os.PathLike[str] | None) -> Path:
    """Where downloads go: ``<data_dir or $CNNKIT_DATA or user cache>/<name>``."""
    roots = user_roots(data_dir)
    return (roots[0] if roots else user_cache_dir()) / source.name


def find_split(
    source: DatasetSource, split: str, data_dir: str | os.PathLike[str] | None
) -> Found | None:
    """The first folder of :func:`search_folders` that holds every file of ``split``."""
    source.check_split(split)
    for folder in search_folders(source, data_dir):
        if folder.is_dir():
            found = source.find_in(folder, split)
            if found is not None:
                return found
    return source.bundled(split)


def not_found_error(
    source: DatasetSource, split: str, data_dir: str | os.PathLike[str] | None
) -> DataError:
    """The one-line error for files that are nowhere, listing every folder searched."""
    names = ", ".join(remote.name for remote in source.splits[split])
    looked = ", ".join(str(folder) for folder in search_folders(source, data_dir))
    return DataError(
        f"{source.name} {split}: files not found ({names}); looked in: {looked}; "
        "allow downloading (download=True, `cnnkit data fetch`) or pass --data-dir"
    )
