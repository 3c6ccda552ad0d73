"""Oracles the tests compare cnnkit against (never cnnkit itself).

``torchvision_models()`` returns ``torchvision.models`` when the dev-only torchvision wheel is
installed (the Makefile installs it with ``--no-deps``). Only its pure-Python model definitions are
used: its compiled ops cannot load on this CPU build of torch, so the module that registers them is
replaced by an empty one before import. Tests that need it skip when it is absent.
"""

from __future__ import annotations

import sys
import types
import warnings
from functools import cache

import pytest


@cache
def _load_torchvision():
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("_meta_stub"))
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
