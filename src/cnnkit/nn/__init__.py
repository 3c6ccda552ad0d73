"""cnnkit.nn"""

from cnnkit.nn.conv_norm_act import ConvNormActivation as ConvNormActivation
from cnnkit.nn.conv_norm_act import same_padding_for as same_padding_for
from cnnkit.nn.drop_block import DropBlock2d as DropBlock2d
from cnnkit.nn.init import conv_fans as conv_fans
from cnnkit.nn.init import kaiming_normal_ as kaiming_normal_
from cnnkit.nn.init import kaiming_uniform_ as kaiming_uniform_
from cnnkit.nn.layer_norm import LayerNorm2d as LayerNorm2d
from cnnkit.nn.padding import CausalConv1d as CausalConv1d
from cnnkit.nn.padding import Conv2dSame as Conv2dSame
from cnnkit.nn.separable import DepthwiseSeparableConv as DepthwiseSeparableConv
from cnnkit.nn.spp import SpatialPyramidPooling as SpatialPyramidPooling
from cnnkit.nn.squeeze_excite import SqueezeExcitation as SqueezeExcitation
from cnnkit.nn.stochastic_depth import StochasticDepth as StochasticDepth
from cnnkit.nn.stochastic_depth import stochastic_depth as stochastic_depth
from cnnkit.nn.upsample import PixelShuffleUpsample as PixelShuffleUpsample
from cnnkit.nn.upsample import ResizeConvUpsample as ResizeConvUpsample
