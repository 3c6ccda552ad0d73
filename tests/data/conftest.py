"""Every data test runs with its own empty user cache and no $CNNKIT_DATA."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_data_env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("CNNKIT_DATA", raising=False)
    monkeypatch.delenv("CNNKIT_NO_CACHE", raising=False)
    yield
