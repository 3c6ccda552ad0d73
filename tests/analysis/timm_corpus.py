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


# name -> (create_model keyword arguments, input side). 104 models from 90+ families, the
# smallest member of each where several exist; 64 px where the model takes it, else its own
# smallest size. Measured with tests/analysis/test_timm_corpus.py.
IMG64 = {"img_size": 64}
SAMPLE: dict[str, tuple[dict[str, Any], int]] = {}


def _names(text: str) -> list[str]:
    return text.split()


def _add(names: str, kwargs: dict[str, Any] | None = None, size: int = 64) -> None:
    for name in _names(names):
        SAMPLE[name] = (dict(kwargs or {}), size)


_add(
    "resnet18 resnet26 resnet10t resnet14t resnet18d seresnet18 skresnet18 resnetblur18 "
    "resnest14d ecaresnet26t mobilenetv2_050 mobilenetv2_100 "
    "mobilenetv3_small_050 mobilenetv3_large_100 mobilenetv4_conv_small mobilenetv1_100 "
    "mnasnet_050 semnasnet_050 spnasnet_100 fbnetc_100 efficientnet_b0 efficientnet_lite0 "
    "efficientnetv2_rw_t tf_efficientnet_b0 tinynet_e mixnet_s tf_mixnet_s ghostnet_050 "
    "ghostnetv2_100 lcnet_050 hardcorenas_a rexnet_100 rexnetr_100 regnetx_002 regnety_002"
)
_add(
    "gcresnet33ts resnext26ts seresnext26ts eca_resnext26ts sebotnet33ts_256 botnet26t_256 "
    "lambda_resnet26t",
    IMG64,
)
_add("halonet26t", IMG64, 256)
_add(
    "caformer_s18 convnext_atto convnextv2_atto cs3darknet_s "
    "darknet17 davit_tiny densenet121 dla34 dla46_c dpn48b edgenext_xx_small "
    "efficientvit_b0 ese_vovnet19b_slim_dw fasternet_t0 fastvit_t8 focalnet_tiny_srf "
    "ghostnet_050 ghostnetv2_100 ghostnetv3_050 hardcorenas_a hgnetv2_b0 hrnet_w18_small "
    "inception_next_tiny lcnet_050 nf_resnet26 poolformer_s12 poolformerv2_s12 pvt_v2_b0 "
    "regnetz_005 starnet_s050 tiny_vit_5m_224 tresnet_m"
)
_add(
    "coat_lite_tiny coat_tiny coatnet_nano_rw_224 convit_tiny "
    "deit_tiny_patch16_224 efficientformerv2_s0 efficientvit_m0 eva02_tiny_patch14_224 "
    "gcvit_xxtiny gernet_s gmixer_12_224 gmlp_ti16_224 levit_128 levit_128s maxvit_nano_rw_256 "
    "mixer_s16_224 mobileone_s0 mobilevit_xxs mobilevitv2_050 nest_tiny repvgg_a0 repvit_m0_9 "
    "resmlp_12_224 sequencer2d_s swin_tiny_patch4_window7_224 "
    "tnt_s_patch16_224 twins_svt_small visformer_tiny vit_tiny_patch16_224 volo_d1_224 "
    "xcit_nano_12_p16_224",
    IMG64,
)
_add("efficientformer_l1", IMG64, 224)  # its attention stage needs the 7x7 map of 224
_add("inception_v3", size=96)

# Families never used to tune cnnkit's rules (the corpus's honest part): sequencer, volo,
# nest, gcvit, davit, focalnet, starnet, fasternet, hgnetv2, inception_next, repvit, tiny_vit,
# efficientformer, coatnet/maxvit, tnt.
HELD_OUT = _names(
    "sequencer2d_s volo_d1_224 nest_tiny gcvit_xxtiny davit_tiny focalnet_tiny_srf "
    "starnet_s050 fasternet_t0 hgnetv2_b0 inception_next_tiny repvit_m0_9 tiny_vit_5m_224 "
    "efficientformer_l1 efficientformerv2_s0 coatnet_nano_rw_224 maxvit_nano_rw_256 "
    "tnt_s_patch16_224"
)

# Receptive fields by gradient: models whose forward_features ends in a map (N, C, H, W).
RF_SAMPLE = {
    name: SAMPLE[name]
    for name in _names(
        "resnet10t resnet18d seresnet18 ecaresnet26t tresnet_m mobilenetv2_050 "
        "mobilenetv3_small_050 efficientnet_b0 lcnet_050 regnetx_002 dla46_c mixnet_s "
        "ghostnet_050 hardcorenas_a repvgg_a0 cs3darknet_s ese_vovnet19b_slim_dw convnext_atto "
        "poolformer_s12 edgenext_xx_small mobilevit_xxs efficientvit_b0 lambda_resnet26t "
        "starnet_s050 fasternet_t0 hgnetv2_b0 halonet26t"
    )
}
