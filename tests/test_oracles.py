"""The dev-only oracles stay out of a user's import path and are found by the tests.

``make install`` puts torchvision, timm, grad-cam and ttach into ``.venv/oracles`` with
``--no-deps`` (Makefile); only the tests add that folder to ``sys.path`` (tests/oracles.py).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.oracles import (
    ORACLES_ENV,
    REPOSITORY,
    oracle_folder,
    torchvision_models,
    use_oracle_folder,
)


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    """``code`` run by this environment's Python as a user would: no PYTHONPATH, no oracles."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", ORACLES_ENV)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**clean, **env}, cwd=REPOSITORY, timeout=120)  # fmt: skip


def test_makefile_installs_the_oracles_into_their_own_folder_without_dependencies():
    makefile = (REPOSITORY / "Makefile").read_text()
    rule = makefile[makefile.index("$(ORACLE_STAMP):") :]
    assert "--no-deps --target $(ORACLES).new $(ORACLE_PACKAGES)" in rule
    packages = makefile.split("ORACLE_PACKAGES := ", 1)[1].split("\n", 1)[0].split()
    assert {p.split("==")[0] for p in packages} == {"torchvision", "timm", "grad-cam", "ttach"}
    assert "ORACLES := $(VENV)/oracles" in makefile


def test_oracle_folder_goes_first_on_the_path_and_the_ops_module_is_stubbed(tmp_path, monkeypatch):
    monkeypatch.setenv(ORACLES_ENV, str(tmp_path))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    sys.modules.pop("torchvision._meta_registrations", None)
    assert oracle_folder() == tmp_path
    assert use_oracle_folder() == tmp_path
    assert sys.path[0] == str(tmp_path)
    assert "torchvision._meta_registrations" in sys.modules
    use_oracle_folder()
    assert sys.path.count(str(tmp_path)) == 1  # idempotent


def test_user_import_of_torchvision_never_fails_with_the_oracles_compiled_ops():
    """A user's ``import torchvision`` finds no torchvision, or one that works."""
    where = _python("import importlib.util as u; s = u.find_spec('torchvision'); "
                    "print(s.origin if s else '')").stdout.strip()  # fmt: skip
    built_before_the_oracle_folder = not (Path(sys.prefix) / "oracles").is_dir()
    if where and "site-packages" in where and built_before_the_oracle_folder:
        pytest.skip(f"this environment was built by an earlier install step, which put the "
                    f"oracle in site-packages ({where}); make install removes it")  # fmt: skip
    result = _python("import torchvision")
    assert result.returncode == 0 or "ModuleNotFoundError" in result.stderr, result.stderr


def test_tests_find_every_oracle_in_the_oracle_folder():
    folder = oracle_folder()
    if folder is None:
        pytest.skip("no oracle folder (make install creates .venv/oracles)")
    torchvision_models()  # imports torchvision.models with the stub; skips if it cannot
    import torchvision

    assert folder in Path(torchvision.__file__).parents
    for name in ("timm", "pytorch_grad_cam", "ttach"):
        spec = importlib.util.find_spec(name)
        assert spec is not None and folder in Path(spec.origin).parents, name
