"""cnnkit.nn"""

from cnnkit.nn.conv_norm_act import ConvNormActivation as ConvNormActivation
from cnnkit.nn.conv_norm_act import same_padding_for as same_padding_for
from cnnkit.nn.layer_norm import LayerNorm2d as LayerNorm2d
from cnnkit.nn.squeeze_excite import SqueezeExcitation as SqueezeExcitation
from cnnkit.nn.stochastic_depth import StochasticDepth as StochasticDepth
from cnnkit.nn.stochastic_depth import stochastic_depth as stochastic_depth
