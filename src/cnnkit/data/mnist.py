"""The MNIST family (Fashion-MNIST, MNIST, KMNIST): four IDX files each, 28x28 grey images.

Each split is an images file and a labels file. A file is accepted when:

- its decompressed content matches the known SHA-256 (Fashion-MNIST: computed once from the
  official files; this is what verifies Debian's recompressed copies, whose .gz MD5s differ from
  the published ones, see reference-figures.md), else
- it is gzip and matches the publisher's MD5 of the .gz file, else
- it is uncompressed and no digest of the uncompressed file is published: its IDX structure is
  checked (magic, dimensions, counts) and it is reported as such by ``cnnkit data info``.

A digest mismatch raises :class:`ChecksumError` naming the file and both digests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.data import cache
from cnnkit.data.dataset import ImageDataset
from cnnkit.data.idx import (
    check_images_and_labels,
    decompress,
    is_gzip,
    parse_idx,
    read_bytes,
)
from cnnkit.data.sources import DATASETS, DatasetSource, Found, RemoteFile
from cnnkit.errors import ChecksumError

VERIFIED_CONTENT = "sha256 of the decompressed content matches the official one"
VERIFIED_GZIP = "md5 of the .gz matches the published one"
STRUCTURE_ONLY = "no published digest for an uncompressed copy: IDX structure checked only"


@dataclass(frozen=True)
class IdxSource(DatasetSource):
    """A dataset published as (images, labels) IDX file pairs per split."""

    def find_in(self, folder: Path, split: str) -> Found | None:
        paths = []
        for remote in self.splits[split]:
            # the published .gz, or torchvision's decompressed copy next to it
            candidates = [folder / remote.name, folder / remote.name.removesuffix(".gz")]
            path = next((c for c in candidates if c.is_file()), None)
            if path is None:
                return None
            paths.append(path)
        return Found(folder, tuple(paths))

    def read(self, found: Found, split: str) -> tuple[ImageDataset, dict[str, str]]:
        """Decode (or load from the cache) and verify the files of ``split``."""
        import torch

        identity = self.identity(split)
        hit = cache.lookup(cache.source_digests(found.files), identity, ("images", "labels"))
        if hit is not None:
            tensors, verified = hit.tensors, hit.verified
        else:
            images_path, labels_path = found.files
            contents, verified, content_key, digests = [], {}, hashlib.sha256(), []
            for remote, path in zip(self.splits[split], found.files, strict=True):
                data = read_bytes(path)
                content, content_sha256, how = _verified_content(remote, path, data)
                contents.append(content)
                verified[path.name] = how
                content_key.update(content_sha256)
                digests.append(hashlib.sha256(data).hexdigest())  # the bytes decoded, not re-read
            images = parse_idx(contents[0], str(images_path))
            labels = parse_idx(contents[1], str(labels_path))
            check_images_and_labels(
                images, labels, str(images_path), str(labels_path), len(self.classes)
            )
            tensors = {
                "images": torch.from_numpy(np.ascontiguousarray(images)[:, None].copy()),
                "labels": torch.from_numpy(labels.astype(np.int64)),
            }
            cache.store(
                found.files,
                digests,
                identity,
                tensors,
                dataset=self.name,
                split=split,
                content_key=content_key.hexdigest(),
                verified=verified,
            )
        dataset = ImageDataset(
            images=tensors["images"],
            labels=tensors["labels"],
            classes=list(self.classes),
            name=self.name,
            split=split,
            source=str(found.folder),
        )
        return dataset, verified


def _verified_content(remote: RemoteFile, path: Path, data: bytes) -> tuple[bytes, bytes, str]:
    """The decompressed content of ``data`` (the bytes of ``path``), its SHA-256 digest, and
    how it was verified."""
    content = decompress(data, str(path))
    content_sha256 = hashlib.sha256(content)
    if remote.payload_sha256 is not None:
        got = content_sha256.hexdigest()
        if got != remote.payload_sha256:
            raise ChecksumError(
                f"{path}: sha256 of the decompressed content is {got}, "
                f"expected the official {remote.payload_sha256}"
            )
        return content, content_sha256.digest(), VERIFIED_CONTENT
    if is_gzip(data):
        got = hashlib.md5(data).hexdigest()
        if got != remote.md5:
            raise ChecksumError(f"{path}: md5 is {got}, expected the published {remote.md5}")
        return content, content_sha256.digest(), VERIFIED_GZIP
    return content, content_sha256.digest(), STRUCTURE_ONLY


def _idx_files(
    prefix: dict[str, tuple[str, str | None]],
) -> dict[str, tuple[RemoteFile, RemoteFile]]:
    """{split: (images, labels)} from {file name: (md5, payload sha256)} in MNIST's naming."""
    remote = {name: RemoteFile(name, md5, sha) for name, (md5, sha) in prefix.items()}
    return {
        "train": (remote["train-images-idx3-ubyte.gz"], remote["train-labels-idx1-ubyte.gz"]),
        "test": (remote["t10k-images-idx3-ubyte.gz"], remote["t10k-labels-idx1-ubyte.gz"]),
    }


# MD5s: zalandoresearch/fashion-mnist README ("Get the Data"). SHA-256s of the decompressed files:
# computed from the official dataset's files (Debian's dataset-fashion-mnist 2020 package, whose
# content also gives the published facts: 60000x28x28, first labels 9,0,0,3,0,2,7,2,5,5, mean
# 0.2860, std 0.3530); other projects list the same digests for the uncompressed files.
FASHION_MNIST = IdxSource(
    name="fashion_mnist",
    title="Fashion-MNIST",
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    splits=_idx_files(
        {
            "train-images-idx3-ubyte.gz": (
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            ),
            "train-labels-idx1-ubyte.gz": (
                "25c81989df183df01b3e8a0aad5dffbe",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ),
            "t10k-images-idx3-ubyte.gz": (
                "bef4ecab320f06d8554ea6380940ec79",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "bb300cfdad3c16e7a12a480ee83cd310",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ),
        }
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    folders=("fashion_mnist", "fashion-mnist", "FashionMNIST/raw"),
    system_folder="fashion-mnist",
    reference="https://github.com/zalandoresearch/fashion-mnist#get-the-data",
)

# MD5s and mirrors as torchvision 0.29 lists them (torchvision/datasets/mnist.py, class MNIST);
# the files are LeCun's (http://yann.lecun.com/exdb/mnist/).
MNIST = IdxSource(
    name="mnist",
    title="MNIST",
    classes=tuple(str(digit) for digit in range(10)),
    splits=_idx_files(
        {
            "train-images-idx3-ubyte.gz": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", None),
            "train-labels-idx1-ubyte.gz": ("d53e105ee54ea40749a09fcbcd1e9432", None),
            "t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3", None),
            "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c", None),
        }
    ),
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    folders=("mnist", "MNIST/raw"),
    system_folder="mnist",
    reference="http://yann.lecun.com/exdb/mnist/ (MD5s as listed by torchvision.datasets.MNIST)",
)

# Kuzushiji-MNIST (rois-codh/kmnist README); MD5s and mirror as torchvision 0.29 lists them.
KMNIST = IdxSource(
    name="kmnist",
    title="Kuzushiji-MNIST",
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    splits=_idx_files(
        {
            "train-images-idx3-ubyte.gz": ("bdb82020997e1d708af4cf47b453dcf7", None),
            "train-labels-idx1-ubyte.gz": ("e144d726b3acfaa3e44228e80efcd344", None),
            "t10k-images-idx3-ubyte.gz": ("5c965bf0a639b31b8f53240b1b52f4d7", None),
            "t10k-labels-idx1-ubyte.gz": ("7320c461ea6c1c855c0b718fb2a4b134", None),
        }
    ),
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    folders=("kmnist", "KMNIST/raw"),
    system_folder="kmnist",
    reference="https://github.com/rois-codh/kmnist (MD5s as listed by torchvision.datasets.KMNIST)",
)

for _source in (FASHION_MNIST, MNIST, KMNIST):
    DATASETS.add(_source.name, _source)
