"""``--pretrained`` with two processes and an empty cache: one download, both ranks get the file.

Two spawned ranks (gloo on 127.0.0.1, torchrun's environment) fetch the published weights of a
zoo model through :func:`cnnkit.train.transfer.fetch_published_once`, from a server on
127.0.0.1 that counts requests and answers slowly, so that two downloads started together would
overlap (the downloader's lock then refuses the second: ``another process is downloading``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import traceback
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnkit.errors import ConfigError
from tests.data.fakes import Served, http_server
from tests.train.test_distributed_processes import free_port, run_ranks

pytestmark = pytest.mark.slow  # two processes importing torch
MODEL = "squeezenet1_0"
TIMEOUT = 120


class SlowFiles(dict):
    """The served files, each looked up half a second late (the server's handler calls
    ``get`` once per request, after counting it): concurrent downloads would overlap."""

    def get(self, key, default=None):
        time.sleep(0.5)
        return super().get(key, default)


def _rank(rank: int, port: int, base_url: str, file: str, folder: str) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
        XDG_CACHE_HOME=str(Path(folder) / "cache"), TORCH_HOME=str(Path(folder) / "torch"),
    )  # fmt: skip
    try:
        from cnnkit.models.pretrained import PRETRAINED
        from cnnkit.train.distributed import DistributedSettings, join_process_group
        from cnnkit.train.transfer import fetch_published_once

        entry = dataclasses.replace(PRETRAINED.get(MODEL), file=file, base_url=base_url)
        PRETRAINED.add(MODEL, entry, override=True)
        settings = DistributedSettings(backend="gloo", timeout=60.0)
        distributed = join_process_group(settings, torch.device("cpu"))
        path = fetch_published_once(MODEL, distributed)
        (Path(folder) / f"rank{rank}.path").write_text(str(path))
        # leave together: rank 0 hosts the rendezvous store, and a rank whose peer has gone
        # can abort at exit (SIGABRT) in gloo's background threads
        distributed.barrier()
        torch.distributed.destroy_process_group()
    except BaseException as exc:  # reported by the parent, with the rank
        message = f"rank {rank}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        (Path(folder) / f"rank{rank}.error").write_text(message)


def test_two_ranks_with_an_empty_cache_download_the_weights_once(tmp_path):
    data = os.urandom(300_000)
    file = f"{MODEL}-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    served = Served(files=SlowFiles({file: data}))
    with http_server(served) as base:
        port = free_port()
        args = [(rank, port, base, file, str(tmp_path)) for rank in range(2)]
        codes = run_ranks(_rank, args, TIMEOUT)
    errors = sorted(tmp_path.glob("rank*.error"))
    assert not errors, "\n".join(e.read_text() for e in errors)
    assert codes == [0, 0]
    assert [path for path, _ in served.requests] == [f"/files/{file}"]  # one download
    paths = {(tmp_path / f"rank{rank}.path").read_text() for rank in range(2)}
    expected = tmp_path / "cache" / "cnnkit" / "weights" / file
    assert paths == {str(expected)} and expected.read_bytes() == data


def test_a_new_pretrained_run_fetches_through_the_distributed_context_first():
    """The trainer's set-up asks the distributed context before it loads anything (a spy that
    stops it there); a resumed run, which loads its own weights, does not ask."""
    from cnnkit.train.config import TransferConfig
    from cnnkit.train.setup import set_up_transfer

    class Spy:
        def __init__(self):
            self.calls = 0

        def decide_on_main(self, decide):
            self.calls += 1
            raise ConfigError("stopped by the spy")

    spy = Spy()
    with pytest.raises(ConfigError, match="stopped by the spy"):
        set_up_transfer(TransferConfig(pretrained=True), MODEL, 0.1, None, None, True, spy)
    assert spy.calls == 1
    data, model = types.SimpleNamespace(classes=["a", "b"]), torch.nn.Sequential(nn.Linear(2, 2))
    found = set_up_transfer(TransferConfig(pretrained=True), MODEL, 0.1, data, model, False, spy)
    assert found is not None and spy.calls == 1
