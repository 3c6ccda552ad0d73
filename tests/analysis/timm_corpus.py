"""timm as an outside test corpus: models nobody here wrote (dev-only oracle).

timm is installed without its dependencies (``pip install --no-deps timm``). Its import pulls in
torchvision, whose compiled ops cannot load on this CPU build of torch, so torchvision's
``_meta_registrations`` module (which registers fake kernels for those ops) is replaced by an
empty module before the import, as ``tests/oracles.py`` does for torchvision itself. ``timm`` is
imported by name, so it is found in site-packages or in any folder ``tests/conftest.py`` puts on
``sys.path``. Tests that need it skip, with the reason, when it is absent.

``SAMPLE`` is the fixed sample the corpus tests run: small members of many families, each with
the keyword arguments that make it cheap (a small ``img_size`` where a model's patch grid is
fixed). ``HELD_OUT`` families were never used to tune cnnkit's rules: they are the corpus's
honest test.
"""

from __future__ import annotations

import sys
import types
import warnings
from functools import cache
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count


@cache
def _load_timm() -> Any:
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("_meta_stub"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import timm
    except Exception:  # not installed, or an incompatible build
        return None
    return timm


def timm_module() -> Any:
    """The ``timm`` package, or ``pytest.skip`` when the oracle is not installed."""
    timm = _load_timm()
    if timm is None:
        pytest.skip("timm corpus not installed (make install adds it with --no-deps)")
    return timm


def create(name: str, **kwargs: Any) -> torch.nn.Module:
    """A timm model with random weights, in eval mode."""
    return timm_module().create_model(name, pretrained=False, **kwargs).eval()


def _sdpa(query, key, value, *args, out_shape=None, **kwargs) -> int:  # type: ignore[no-untyped-def]
    return sdpa_flop_count(query, key, value)


# On the CPU, scaled_dot_product_attention runs as one fused kernel that FlopCounterMode has no
# formula for: give it torch's own SDPA formula (q k^T and attention x v).
_aten = torch.ops.aten
ATTENTION_FORMULAS = {_aten._scaled_dot_product_flash_attention_for_cpu: _sdpa}


def flop_counter() -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping=ATTENTION_FORMULAS)
