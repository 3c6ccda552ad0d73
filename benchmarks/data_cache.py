"""Benchmark: loading Fashion-MNIST's training split, first and again, with the content-keyed cache.

The decoded-data cache (cnnkit.data.cache) is keyed by the SHA-256 of the source files' bytes. A
file is hashed (31 MB of gzip for Fashion-MNIST, 47 MB of cached tensors) when it changed since
it was last hashed, else recognised by its identity (inode, size, modification and change
times). This script times, in one process and interleaved:

- ``first``: ``load_dataset`` with an empty cache (decompress, verify against the official
  SHA-256, parse, hash, store);
- ``cached``: ``load_dataset`` again, the files unchanged (stat, load the tensors);
- ``cached, rehashed``: the same with the digest records removed, as after a file changed (hash
  the sources and the tensors file, load the tensors);
- ``hash only``: the hashes alone;
- the peer, torchvision 0.29's ``datasets.FashionMNIST`` on the decompressed files (no
  verification, no cache), when the dev-only oracle folder is installed (make install).

Writes benchmarks/results/data_cache.json. Usage: ``python benchmarks/data_cache.py [--repeats 5]``
(the data must be in /usr/share/datasets/fashion-mnist, tools/install_data.sh).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from fashion_table import machine_info, machine_label, write_result  # noqa: E402

SOURCE = Path("/usr/share/datasets/fashion-mnist")


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _torchvision_loader(folder: Path):
    """torchvision's FashionMNIST on decompressed copies, or None when the oracle is absent."""
    from tests.oracles import use_oracle_folder

    use_oracle_folder()
    try:
        from torchvision.datasets import FashionMNIST
    except Exception:
        return None
    raw = folder / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for path in SOURCE.glob("*.gz"):  # torchvision checks that all four exist
        (raw / path.name.removesuffix(".gz")).write_bytes(gzip.decompress(path.read_bytes()))
    return lambda: FashionMNIST(str(folder), train=True, download=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["XDG_CACHE_HOME"] = str(Path(scratch) / "cache")
        from cnnkit.data import cache as cache_module
        from cnnkit.data import load_dataset
        from cnnkit.data.cache import cache_folder, file_sha256

        def load():
            load_dataset("fashion_mnist", "train", download=False)

        peer = _torchvision_loader(Path(scratch) / "tv")
        cache_module.RECENT_NS = 0  # the cache files were written just now; trust them
        first, cached, rehashed, hashes, theirs = [], [], [], [], []
        for _ in range(args.repeats):
            shutil.rmtree(cache_folder(), ignore_errors=True)
            first.append(_seconds(load))
            cached.append(_seconds(load))
            shutil.rmtree(cache_folder() / "digests")
            rehashed.append(_seconds(load))
            tensors = next(cache_folder().glob("*-train-*.pt"))
            sources = sorted(SOURCE.glob("train-*.gz"))
            hashes.append(_seconds(lambda: [file_sha256(p) for p in (*sources, tensors)]))  # noqa: B023
            if peer is not None:
                theirs.append(_seconds(peer))
    median = {name: statistics.median(v) for name, v in
              (("first", first), ("cached", cached), ("cached_rehashed", rehashed),
               ("hash_only", hashes), ("torchvision", theirs))
              if v}  # fmt: skip
    machine = machine_info()
    result = {
        "measured": machine_label(machine),
        "machine": machine,
        "load_average_1min": os.getloadavg()[0],
        "repeats": args.repeats,
        "median_seconds": median,
        "cached_vs_torchvision": median["cached"] / median["torchvision"] if theirs else None,
    }
    path = write_result("data_cache", result)
    for name, value in median.items():
        print(f"{name:<16} {value * 1e3:8.1f} ms")
    if theirs:
        print(f"cached load / torchvision's load: {result['cached_vs_torchvision']:.2f}x")
    print(f"load average {result['load_average_1min']:.2f}; wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
