"""Small generated dataset files and a local HTTP server: the data tests never touch the internet.

The IDX and CIFAR writers here are written from the formats' published descriptions, independently
of cnnkit's readers (which the tests check against them).
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IDX_TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
                  np.float64: 0x0E}  # fmt: skip


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding: 0, 0, type byte, ndim, big-endian uint32 sizes, big-endian items."""
    code = IDX_TYPE_CODES[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tiny_mnist(count: int = 12, seed: int = 0, size: int = 6) -> dict[str, np.ndarray]:
    """Random (images, labels) arrays for a train and a test split."""
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (count, size, size), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, count, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (count // 2, size, size), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, count // 2, dtype=np.uint8),
    }


def gz_files(arrays: dict[str, np.ndarray], mtime: int = 0) -> dict[str, bytes]:
    """{name.gz: gzip bytes} of the IDX encodings."""
    return {f"{name}.gz": gzip.compress(idx_bytes(a), mtime=mtime) for name, a in arrays.items()}


def cifar_batch_pickle(data: np.ndarray, labels: list[int], labels_key: str = "labels") -> bytes:
    return pickle.dumps({"batch_label": "generated", labels_key: labels, "data": data}, protocol=2)


def cifar10_archive(path: Path, train_count: int = 4, test_count: int = 3, seed: int = 0) -> dict:
    """A cifar-10-python.tar.gz with 5 train batches of ``train_count`` and a test batch."""
    rng = np.random.default_rng(seed)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]  # fmt: skip
    members, arrays = {}, {}
    for batch in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        count = test_count if batch == "test_batch" else train_count
        data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, count)]
        arrays[batch] = (data, labels)
        members[f"cifar-10-batches-py/{batch}"] = cifar_batch_pickle(data, labels)
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps(
        {"label_names": names, "num_cases_per_batch": train_count}, protocol=2
    )
    write_tar(path, members)
    return {"arrays": arrays, "classes": names, "members": members}


def write_tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)


@dataclass
class Served:
    """What the local server serves and what it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    ignore_range: bool = False
    cut_after: dict[str, int] = field(default_factory=dict)  # name -> bytes sent before a cut
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


class _Handler(http.server.BaseHTTPRequestHandler):
    served: Served

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        self.served.requests.append((self.path, self.headers.get("Range")))
        data = self.served.files.get(name)
        if data is None:
            self.send_error(404)
            return
        start = 0
        range_header = self.headers.get("Range")
        if range_header and not self.served.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.served.cut_after.pop(name, None)  # cut once, then serve normally
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@contextmanager
def http_server(served: Served) -> Iterator[str]:
    """Serve ``served.files`` on 127.0.0.1 from a thread; yields the base URL (ends with /)."""
    handler = type("Handler", (_Handler,), {"served": served})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/files/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
