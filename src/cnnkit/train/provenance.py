"""What reproduces a run: versions, command line, code commit, machine, data digests.

:func:`collect_environment` builds one :class:`Environment`; ``fit`` writes it into the run
folder as ``environment.json`` (final.json names that file) and prints :meth:`Environment.line`
under the run header; ``cnnkit eval`` shows the line of the run it evaluates. The data files are
identified by the SHA-256 of their bytes as found on disk (``sha256sum FILE`` gives the same
digest), so a run can be checked against the very files it read.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit.errors import DataError
from cnnkit.runtime import cpu_model

if TYPE_CHECKING:
    import torch

    from cnnkit.data import ImageDataset

ENVIRONMENT_FILE = "environment.json"
# Folders of images are hashed file by file; past this many bytes the digest is skipped (and
# says so), so that a run on a large folder does not spend minutes hashing before it starts.
HASH_LIMIT_BYTES = 2 * 1024**3
_CHUNK = 1 << 20


@dataclass(frozen=True)
class DataFile:
    """One file a run read: its path, size and the SHA-256 of its bytes (``sha256sum``)."""

    split: str
    path: str
    bytes: int
    sha256: str | None  # None: not hashed (see ``note``)
    note: str = ""


@dataclass(frozen=True)
class Environment:
    """Everything needed to rerun a run: software, command, code, machine, data."""

    cnnkit: str
    torch: str
    python: str
    numpy: str
    platform: str
    command: list[str]
    cwd: str
    git_commit: str | None
    git_dirty: bool | None
    cpu_model: str
    cpu_count: int
    threads: int
    device: str
    precision: str
    data: list[DataFile] = field(default_factory=list)
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Environment:
        """Read what :meth:`to_dict` wrote (unknown keys are ignored, missing ones default)."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["data"] = [DataFile(**d) for d in known.get("data", []) if isinstance(d, dict)]
        defaults: dict[str, Any] = {
            "cnnkit": "?",
            "torch": "?",
            "python": "?",
            "numpy": "?",
            "platform": "?",
            "command": [],
            "cwd": "",
            "git_commit": None,
            "git_dirty": None,
            "cpu_model": "?",
            "cpu_count": 0,
            "threads": 0,
            "device": "?",
            "precision": "?",
        }
        return cls(**{**defaults, **known})

    @property
    def command_line(self) -> str:
        """The command as a shell would take it back (``shlex.join``)."""
        return shlex.join(self.command)

    def line(self) -> str:
        """One line for a run header: ``cnnkit 0.1.0, torch 2.x, Python 3.x, git abc1234 ...``."""
        if self.git_commit is None:
            code = "not a git checkout"
        else:
            code = f"git {self.git_commit[:10]}{' (uncommitted changes)' if self.git_dirty else ''}"
        return (
            f"cnnkit {self.cnnkit}, torch {self.torch}, Python {self.python}, {code}; "
            f"{self.cpu_model}, {self.cpu_count} CPUs"
        )


def collect_environment(
    *,
    device: torch.device | str,
    precision: str,
    datasets: Iterable[ImageDataset] = (),
    data_dir: str | None = None,
    command: Sequence[str] | None = None,
) -> Environment:
    """The :class:`Environment` of this process for a run on ``device`` with ``datasets``.

    ``command`` defaults to this process's ``sys.argv`` (``python -m cnnkit`` shown as
    ``cnnkit``). ``precision`` is the autocast actually used (``fp32``, ``bf16``, ``fp16``).
    """
    import numpy
    import torch

    from cnnkit import __version__

    return Environment(
        cnnkit=__version__,
        torch=torch.__version__,
        python=platform.python_version(),
        numpy=numpy.__version__,
        platform=platform.platform(),
        command=list(command) if command is not None else _process_command(),
        cwd=os.getcwd(),
        git_commit=(git := git_state())[0],
        git_dirty=git[1],
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count() or 0,
        threads=torch.get_num_threads(),
        device=str(device),
        precision=precision,
        data=data_files(datasets, data_dir),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def _process_command() -> list[str]:
    argv = list(sys.argv)
    if argv and (argv[0].endswith(("__main__.py", "/cnnkit")) or argv[0] == "cnnkit"):
        argv[0] = "cnnkit"
    return argv


def git_state(path: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, has uncommitted changes) of the git checkout holding cnnkit's code, if any.

    An installed package (site-packages) is not in a checkout: ``(None, None)``. The package
    folder must be tracked by that checkout, so a virtual environment kept inside some other
    repository does not report that repository's commit.
    """
    folder = path or Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None or git("ls-files", "--error-unmatch", "__init__.py") is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit.strip(), None if status is None else bool(status.strip())


def sha256_file(path: Path) -> str:
    """SHA-256 of the file's bytes, read in 1 MiB chunks (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"{path}: cannot read to compute its digest ({exc})") from None
    return digest.hexdigest()


def sha256_tensors(*tensors: torch.Tensor) -> str:
    """SHA-256 of the tensors' bytes in order (images and labels of an in-memory dataset)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def data_files(datasets: Iterable[ImageDataset], data_dir: str | None = None) -> list[DataFile]:
    """The files behind each dataset, with their SHA-256.

    A named dataset (``fashion_mnist``, ...) gives the files its split was read from; a
    ``folder:`` dataset every image file (one entry per file); a dataset built in memory one
    entry ``<memory>`` whose digest is that of its image and label tensors.
    """
    from cnnkit.data.load import FOLDER_PREFIX, get_source

    result: list[DataFile] = []
    seen: set[str] = set()
    for dataset in datasets:
        # a validation split is part of the train files
        split = "train" if dataset.split == "val" else dataset.split
        paths: list[Path] | None = None
        if dataset.name.startswith(FOLDER_PREFIX) and dataset.source:
            paths = sorted(p for p in Path(dataset.source).rglob("*") if p.is_file())
        elif dataset.name in _registered():
            paths = _named_files(get_source(dataset.name), split, dataset.source, data_dir)
        if paths is None:
            key = f"<memory>:{dataset.name}:{dataset.split}"
            if key not in seen:
                seen.add(key)
                digest = sha256_tensors(dataset.images, dataset.labels)
                size = dataset.images.numel() + 8 * dataset.labels.numel()
                result.append(DataFile(dataset.split, f"<memory: {dataset.name}>", size, digest))
            continue
        result.extend(_hashed(split, [p for p in paths if str(p) not in seen]))
        seen.update(str(p) for p in paths)
    return result


def _named_files(
    source: Any, split: str, where: str | None, data_dir: str | None
) -> list[Path] | None:
    """The files a named dataset's split was read from: in the folder (or the archive) the
    dataset records as its source, else where the search would find them now."""
    from cnnkit.data.sources import find_split

    if split not in source.splits:
        return None
    if where is not None and Path(where).is_file():
        return [Path(where)]
    found = source.find_in(Path(where), split) if where and Path(where).is_dir() else None
    if found is None:
        found = find_split(source, split, data_dir)
    return list(found.files) if found is not None else None


def _registered() -> set[str]:
    from cnnkit.data.load import list_datasets

    return set(list_datasets())


def _hashed(split: str, paths: list[Path]) -> list[DataFile]:
    sizes = [p.stat().st_size for p in paths]
    if sum(sizes) > HASH_LIMIT_BYTES:
        note = f"not hashed: {sum(sizes) / 1e9:.1f} GB in {len(paths)} files"
        return [DataFile(split, str(p), s, None, note) for p, s in zip(paths, sizes, strict=True)]
    return [DataFile(split, str(p), s, sha256_file(p)) for p, s in zip(paths, sizes, strict=True)]


def write_environment(out_dir: Path, environment: Environment) -> Path:
    """Write ``environment.json`` atomically; a resumed run keeps the earlier sessions.

    The top level is the latest session; ``previous_sessions`` lists the ones before it, so
    a run trained in two sessions (``--resume``) records both machines.
    """
    from cnnkit._io import atomic_write_text
    from cnnkit.train.jsonio import dumps

    path = out_dir / ENVIRONMENT_FILE
    previous: list[dict[str, Any]] = []
    old = read_environment_dict(path)
    if old is not None:
        earlier = old.pop("previous_sessions", [])
        previous = [*earlier, old] if isinstance(earlier, list) else [old]
    data = {**environment.to_dict(), "previous_sessions": previous}
    atomic_write_text(path, dumps(data) + "\n")
    return path


def read_environment_dict(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_environment(run_dir: Path) -> Environment | None:
    """The latest session's :class:`Environment` of a run folder, if it recorded one."""
    data = read_environment_dict(run_dir / ENVIRONMENT_FILE)
    if data is None:
        return None
    try:
        return Environment.from_dict(data)
    except (TypeError, ValueError):  # a hand-edited or foreign file: nothing to show
        return None
