"""Downloads against a local HTTP server: resume, servers that ignore Range, cuts, bad checksums."""

from __future__ import annotations

import pytest

from cnnkit.data.download import Digest, download_file
from cnnkit.errors import ChecksumError, DownloadError
from tests.data.fakes import Served, http_server, md5

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes: several chunks


def _digest(data: bytes = PAYLOAD) -> Digest:
    return Digest("md5", md5(data))


def test_downloads_and_verifies(tmp_path):
    served = Served(files={"file.bin": PAYLOAD})
    with http_server(served) as base:
        path = download_file([base + "file.bin"], tmp_path / "file.bin", _digest())
    assert path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]  # no .part, no lock left


def test_resumes_a_partial_file_with_range(tmp_path):
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:30_000])
    served = Served(files={"file.bin": PAYLOAD})
    with http_server(served) as base:
        download_file([base + "file.bin"], tmp_path / "file.bin", _digest())
    assert served.requests == [("/files/file.bin", "bytes=30000-")]
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_from_zero(tmp_path):
    (tmp_path / "file.bin.part").write_bytes(b"garbage that must not be kept")
    served = Served(files={"file.bin": PAYLOAD}, ignore_range=True)
    with http_server(served) as base:
        download_file([base + "file.bin"], tmp_path / "file.bin", _digest())
    assert served.requests[0][1] is not None  # it asked for a range, got the whole file
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_complete_part_answered_416_is_verified_and_kept(tmp_path):
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD)
    with http_server(Served(files={"file.bin": PAYLOAD})) as base:
        download_file([base + "file.bin"], tmp_path / "file.bin", _digest())
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_cut_connection_keeps_the_part_and_the_next_call_resumes(tmp_path):
    served = Served(files={"file.bin": PAYLOAD}, cut_after={"file.bin": 50_000})
    destination = tmp_path / "file.bin"
    with http_server(served) as base:
        url = base + "file.bin"
        with pytest.raises(DownloadError) as info:
            download_file([url], destination, _digest())
        message = str(info.value)
        assert url in message and "cut after 50000 of 102400 bytes" in message
        assert "\n" not in message and "resume" in message
        assert not destination.exists()
        assert (tmp_path / "file.bin.part").read_bytes() == PAYLOAD[:50_000]
        download_file([url], destination, _digest())
    assert served.requests[-1][1] == "bytes=50000-"
    assert destination.read_bytes() == PAYLOAD


def test_wrong_checksum_names_file_and_digests_and_leaves_nothing(tmp_path):
    corrupt = PAYLOAD[:-1] + b"\x00"
    destination = tmp_path / "file.bin"
    with (
        http_server(Served(files={"file.bin": corrupt})) as base,
        pytest.raises(ChecksumError) as info,
    ):
        download_file([base + "file.bin"], destination, _digest())
    message = str(info.value)
    assert "file.bin" in message and md5(PAYLOAD) in message and md5(corrupt) in message
    assert list(tmp_path.iterdir()) == []  # neither found nor resumed next time


def test_mirrors_are_tried_in_order(tmp_path):
    first = Served(files={})  # 404
    second = Served(files={"file.bin": PAYLOAD})
    with http_server(first) as base_one, http_server(second) as base_two:
        download_file(
            [base_one + "file.bin", base_two + "file.bin"], tmp_path / "file.bin", _digest()
        )
    assert len(first.requests) == 1 and len(second.requests) == 1
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_a_bad_mirror_falls_through_to_a_good_one(tmp_path):
    bad = Served(files={"file.bin": b"not the file"})
    good = Served(files={"file.bin": PAYLOAD})
    with http_server(bad) as base_bad, http_server(good) as base_good:
        download_file(
            [base_bad + "file.bin", base_good + "file.bin"], tmp_path / "file.bin", _digest()
        )
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_every_mirror_failing_names_each_url(tmp_path):
    with http_server(Served()) as base:
        urls = [base + "a/file.bin", base + "b/file.bin"]
        with pytest.raises(DownloadError) as info:
            download_file(urls, tmp_path / "file.bin", _digest())
    assert all(url in str(info.value) for url in urls) and "HTTP 404" in str(info.value)


def test_unreachable_server_is_a_download_error(tmp_path):
    with pytest.raises(DownloadError, match="cannot connect"):
        download_file(["http://127.0.0.1:9/file.bin"], tmp_path / "file.bin", _digest(), timeout=2)


def test_a_second_download_of_the_same_file_is_refused_while_locked(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    # flock locks belong to an open file description: a second open() conflicts like a process
    with open(tmp_path / "file.bin.part.lock", "wb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        with pytest.raises(DownloadError, match="another process is downloading"):
            download_file(["http://127.0.0.1:9/x"], tmp_path / "file.bin", _digest())


def test_an_unwritable_destination_is_a_download_error(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(DownloadError, match="cannot write"):
        download_file(["http://127.0.0.1:9/x"], tmp_path / "a-file" / "x.bin", _digest())


def test_a_prefix_digest_matches_only_digests_starting_with_it():
    full = Digest("sha256", "ab" * 32)
    prefix = Digest("sha256", "ababa", prefix=True)
    assert full.matches("ab" * 32) and not full.matches("ab" * 31 + "ac")
    assert prefix.matches("ab" * 32) and not prefix.matches("ba" * 32)
    assert not Digest("sha256", "abab").matches("ab" * 32)  # not a prefix: exact only
