"""Looking inside a CNN (capabilities F1-F5): feature maps, filters, class activation maps with a
faithfulness score, effective receptive fields and gradient flow.
"""

from __future__ import annotations

from cnnkit.explain import cam_methods as _cam_methods  # noqa: F401  (registers the methods)
from cnnkit.explain.cam import CAM_METHODS, CamMethod, CamResult, cam
from cnnkit.explain.compare import Comparison, MethodScore, compare_methods
from cnnkit.explain.erf import ErfResult, effective_receptive_field
from cnnkit.explain.faithfulness import FaithfulnessResult, faithfulness
from cnnkit.explain.features import ChannelStats, FeatureMaps, LayerMaps, feature_maps
from cnnkit.explain.filters import Filters, filters
from cnnkit.explain.gradient_flow import GradientFlow, GradientFlowRecorder, gradient_flow
from cnnkit.explain.layers import first_conv_layer, last_conv_layer, stage_outputs

__all__ = [
    "CAM_METHODS",
    "CamMethod",
    "CamResult",
    "ChannelStats",
    "Comparison",
    "ErfResult",
    "FaithfulnessResult",
    "FeatureMaps",
    "Filters",
    "GradientFlow",
    "GradientFlowRecorder",
    "LayerMaps",
    "MethodScore",
    "cam",
    "compare_methods",
    "effective_receptive_field",
    "faithfulness",
    "feature_maps",
    "filters",
    "first_conv_layer",
    "gradient_flow",
    "last_conv_layer",
    "stage_outputs",
]
