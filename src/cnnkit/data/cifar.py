"""CIFAR-10 and CIFAR-100 from their "python version" archives, read safely.

The archive (``cifar-10-python.tar.gz``) holds pickled dicts: ``data`` a (N, 3072) uint8 array
(1024 red, 1024 green, 1024 blue values per image, row-major 32x32) and ``labels`` (CIFAR-10) or
``fine_labels`` (CIFAR-100); a meta file holds the class names (Krizhevsky's page,
https://www.cs.toronto.edu/~kriz/cifar.html). Two safety rules:

- Members are read straight from the archive, never extracted; an archive holding an absolute
  path, a ``..`` component or a link is refused as a whole (it was not made by the publisher).
- Pickles are loaded by a restricted unpickler that resolves only the globals a numpy array
  needs (``_reconstruct``, ``ndarray``, ``dtype``, under numpy 1's or 2's module name, and
  ``_codecs.encode`` limited to latin-1, which Python 3's protocol-2 pickles use for bytes) and
  refuses object dtypes, so a pickle cannot run code; the result must be a dict of arrays,
  lists, strings and numbers.

The archive is verified by the publisher's MD5; an extracted folder (torchvision's layout,
``cifar-10-batches-py/``) by the per-file MD5s torchvision lists.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from cnnkit.data import cache
from cnnkit.data.dataset import ImageDataset
from cnnkit.data.download import file_hexdigest
from cnnkit.data.idx import read_bytes
from cnnkit.data.sources import DATASETS, DatasetSource, Found, RemoteFile
from cnnkit.errors import ChecksumError, DataError

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's own _reconstruct, any version


def _safe_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    dtype = np.dtype(spec, align, copy)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"object dtype {spec!r} refused")
    return dtype


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Protocol-2 pickles written by Python 3 store bytes as ``_codecs.encode(text, "latin1")``."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} refused")
    return text.encode("latin1")


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _latin1_encode,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # pickles made with numpy 1
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,  # numpy 2
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _safe_dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} refused") from None


def safe_unpickle(data: bytes, origin: str) -> dict[str, Any]:
    """Unpickle a CIFAR batch: a dict of numpy arrays, lists, strings and numbers, nothing else.

    ``encoding="latin1"`` reads the Python 2 pickles CIFAR ships (numpy's documented way).
    """
    try:
        loaded = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:  # UnpicklingError, EOFError, ValueError, ...: all mean a bad file
        raise DataError(f"{origin}: not a CIFAR batch pickle ({exc})") from None
    if not isinstance(loaded, dict):
        raise DataError(f"{origin}: expected a pickled dict, got {type(loaded).__name__}")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in loaded.items()}


@dataclass(frozen=True)
class CifarSource(DatasetSource):
    """A CIFAR archive: ``splits`` name the archive; ``members`` the batches inside it.

    Attributes:
        base_folder: the folder inside the archive (and torchvision's extracted folder).
        members: split -> ((batch file, md5), ...) as torchvision lists them.
        meta: (meta file, md5); ``names_key`` is its list of class names.
        labels_key: the key of the labels in a batch (``labels`` or ``fine_labels``).
    """

    base_folder: str = ""
    members: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    meta: tuple[str, str] = ("", "")
    names_key: str = "label_names"
    labels_key: str = "labels"

    def _needed(self, split: str) -> tuple[tuple[str, str], ...]:
        return (*self.members[split], self.meta)

    def find_in(self, folder: Path, split: str) -> Found | None:
        archive = folder / self.splits[split][0].name
        if archive.is_file():
            return Found(folder, (archive,))
        for base in (folder / self.base_folder, folder):  # extracted, or the folder itself
            paths = tuple(base / name for name, _ in self._needed(split))
            if all(path.is_file() for path in paths):
                return Found(base, paths)
        return None

    def read(self, found: Found, split: str) -> tuple[ImageDataset, dict[str, str]]:
        import torch

        identity = [*self.identity(split), repr(self._needed(split))]
        digests = cache.source_digests(found.files)
        hit = cache.lookup(digests, identity, ("images", "labels"))
        if hit is not None and hit.classes is not None:
            tensors, verified, classes = hit.tensors, hit.verified, hit.classes
        else:
            if len(found.files) == 1:
                members, verified = self._read_archive(found.files[0], split)
            else:
                members, verified = self._read_extracted(found.files, split)
            images, labels, classes = self._decode(members, split)
            key = hashlib.sha256(b"".join(hashlib.sha256(m).digest() for m in members.values()))
            tensors = {
                "images": torch.from_numpy(images),
                "labels": torch.from_numpy(labels),
            }
            cache.store(
                found.files,
                digests,
                identity,
                tensors,
                dataset=self.name,
                split=split,
                content_key=key.hexdigest(),
                verified=verified,
                classes=classes,
            )
        dataset = ImageDataset(
            images=tensors["images"],
            labels=tensors["labels"],
            classes=classes,
            name=self.name,
            split=split,
            source=str(found.files[0] if len(found.files) == 1 else found.folder),
        )
        return dataset, verified

    def _read_archive(self, archive: Path, split: str) -> tuple[dict[str, bytes], dict[str, str]]:
        remote = self.splits[split][0]
        got = file_hexdigest(archive, "md5")
        if got != remote.md5:
            raise ChecksumError(f"{archive}: md5 is {got}, expected the published {remote.md5}")
        wanted = {f"{self.base_folder}/{name}": name for name, _ in self._needed(split)}
        return read_tar_members(archive, wanted), {archive.name: "md5 matches the published one"}

    def _read_extracted(
        self, paths: tuple[Path, ...], split: str
    ) -> tuple[dict[str, bytes], dict[str, str]]:
        members, verified = {}, {}
        for path, (name, md5) in zip(paths, self._needed(split), strict=True):
            data = read_bytes(path)
            got = hashlib.md5(data).hexdigest()
            if got != md5:
                raise ChecksumError(f"{path}: md5 is {got}, expected {md5}")
            members[name] = data
            verified[path.name] = "md5 matches torchvision's list"
        return members, verified

    def _decode(
        self, members: dict[str, bytes], split: str
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        meta = safe_unpickle(members[self.meta[0]], self.meta[0])
        classes = meta.get(self.names_key)
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise DataError(f"{self.meta[0]}: no list of class names under {self.names_key!r}")
        images, labels = [], []
        for name, _ in self.members[split]:
            batch = safe_unpickle(members[name], name)
            data, batch_labels = batch.get("data"), batch.get(self.labels_key)
            if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
                raise DataError(f"{name}: 'data' is not a (N, 3072) uint8 array")
            if data.shape[1] != 3 * 32 * 32:
                raise DataError(f"{name}: 'data' rows hold {data.shape[1]} values, not 3072")
            label_array = np.asarray(batch_labels)
            if label_array.shape != (data.shape[0],) or label_array.dtype.kind not in "iu":
                raise DataError(f"{name}: {self.labels_key!r} is not one integer per image")
            if label_array.size and (label_array.min() < 0 or label_array.max() >= len(classes)):
                raise DataError(f"{name}: labels outside 0..{len(classes) - 1}")
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(label_array.astype(np.int64))
        return np.concatenate(images), np.concatenate(labels), classes


def read_tar_members(archive: Path, wanted: Mapping[str, str]) -> dict[str, bytes]:
    """Read the regular-file members ``wanted`` (archive name -> key) without extracting.

    Raises:
        DataError: naming the archive when it is unreadable, holds an unsafe member (absolute
            path, ``..``, link, device) or lacks a wanted member.
    """
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                _check_member(archive, member)
                key = wanted.get(member.name.removeprefix("./"))
                if key is not None and member.isfile():
                    handle = tar.extractfile(member)
                    found[key] = handle.read() if handle is not None else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{archive}: corrupt or truncated archive ({exc})") from None
    missing = [name for name, key in wanted.items() if key not in found]
    if missing:
        raise DataError(f"{archive}: missing {', '.join(missing)}")
    return found


def _check_member(archive: Path, member: tarfile.TarInfo) -> None:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        raise DataError(f"{archive}: refused: member {member.name!r} escapes the archive")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: refused: member {member.name!r} is a link or special file")


_CIFAR10_BATCHES = {
    "train": tuple(
        (f"data_batch_{i}", md5)
        for i, md5 in enumerate(
            (
                "c99cafc152244af753f735de768cd75f",
                "d4bba439e000b95fd0a9bffe97cbabec",
                "54ebc095f3ab1f0389bbae665268c751",
                "634d18415352ddfa80567beed471001a",
                "482c414d41f54cd18b22e5b47cb7c3cb",
            ),
            start=1,
        )
    ),
    "test": (("test_batch", "40351d587109b95175f43aff81a1287e"),),
}

# Archive URLs and MD5s: https://www.cs.toronto.edu/~kriz/cifar.html; per-file MD5s of the
# extracted batches as torchvision 0.29 lists them (torchvision/datasets/cifar.py).
_CIFAR10_ARCHIVE = RemoteFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")
CIFAR10 = CifarSource(
    name="cifar10",
    title="CIFAR-10",
    classes=(),  # read from batches.meta
    splits={"train": (_CIFAR10_ARCHIVE,), "test": (_CIFAR10_ARCHIVE,)},
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    folders=("cifar10", "cifar-10"),
    system_folder="cifar10",
    reference="https://www.cs.toronto.edu/~kriz/cifar.html",
    base_folder="cifar-10-batches-py",
    members=_CIFAR10_BATCHES,
    meta=("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
    names_key="label_names",
    labels_key="labels",
)

_CIFAR100_ARCHIVE = RemoteFile("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85")
CIFAR100 = CifarSource(
    name="cifar100",
    title="CIFAR-100",
    classes=(),  # read from meta (the 100 fine labels)
    splits={"train": (_CIFAR100_ARCHIVE,), "test": (_CIFAR100_ARCHIVE,)},
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    folders=("cifar100", "cifar-100"),
    system_folder="cifar100",
    reference="https://www.cs.toronto.edu/~kriz/cifar.html",
    base_folder="cifar-100-python",
    members={
        "train": (("train", "16019d7e3df5f24257cddd939b257f8d"),),
        "test": (("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),),
    },
    meta=("meta", "7973b15100ade9c7d40fb424638fde48"),
    names_key="fine_label_names",
    labels_key="fine_labels",
)

for _source in (CIFAR10, CIFAR100):
    DATASETS.add(_source.name, _source)
