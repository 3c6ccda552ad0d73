"""Oracles the tests compare cnnkit against (never cnnkit itself), and where they are installed.

The dev-only oracles and peers (torchvision's pure-Python model definitions, timm, grad-cam and
ttach) are installed by ``make install`` with ``--no-deps`` into their own folder,
``.venv/oracles``, never into the environment's site-packages: torchvision's compiled ops cannot
load on this CPU build of torch, so ``import torchvision`` would fail for a user.
:func:`use_oracle_folder` (called once by tests/conftest.py) puts that folder first on
``sys.path`` for the tests only, and replaces the module that registers torchvision's compiled
ops by an empty one (timm imports torchvision too). The folder is, in order: ``$CNNKIT_ORACLES``,
``<repository>/.venv/oracles``, ``<running environment>/oracles``; when none exists, an oracle
installed in site-packages (the layout of earlier install steps) is still found. Tests that need
an oracle skip when it is absent.
"""

from __future__ import annotations

import os
import sys
import types
import warnings
from functools import cache
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
ORACLES_ENV = "CNNKIT_ORACLES"
_STUBBED = "torchvision._meta_registrations"


def oracle_folder() -> Path | None:
    """The folder the Makefile installs the oracles into, or ``None`` when there is none."""
    named = os.environ.get(ORACLES_ENV)
    candidates = [Path(named)] if named else []
    candidates += [REPOSITORY / ".venv" / "oracles", Path(sys.prefix) / "oracles"]
    return next((folder for folder in candidates if folder.is_dir()), None)


def use_oracle_folder() -> Path | None:
    """Put :func:`oracle_folder` first on ``sys.path`` and stub torchvision's compiled-op
    registrations; returns the folder used (``None``: site-packages only)."""
    # torchvision/__init__ imports _meta_registrations, which registers meta kernels for ops
    # (torchvision::nms, ...) that its compiled library, built for another torch, never defined.
    sys.modules.setdefault(_STUBBED, types.ModuleType("_meta_stub"))
    folder = oracle_folder()
    if folder is not None and str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return folder


@cache
def _load_torchvision():
    use_oracle_folder()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torchvision.models as models
    except Exception:  # not installed, or an incompatible build
        return None
    return models


def torchvision_models():
    """``torchvision.models`` or ``pytest.skip`` when the oracle is not installed."""
    models = _load_torchvision()
    if models is None:
        pytest.skip("torchvision oracle not installed (make install adds it)")
    return models
