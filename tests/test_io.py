import pytest

from cnnkit._io import atomic_open, atomic_write_text


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out" / "file.txt"
    atomic_write_text(target, "first")
    with pytest.raises(RuntimeError), atomic_open(target, "wb") as handle:
        handle.write(b"half-written")
        raise RuntimeError("interrupted")
    assert target.read_text() == "first"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]
