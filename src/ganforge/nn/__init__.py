"""Building blocks shared by the models. Imports nothing from above it."""

from ganforge.nn.activation import bias_act
from ganforge.nn.layers import Conv2dLayer, FullyConnectedLayer, normalize_2nd_moment
from ganforge.nn.mbstd import MinibatchStdLayer, minibatch_stddev
from ganforge.nn.modconv import demodulate, modulated_conv2d
from ganforge.nn.resample import conv2d_resample, downsample2d, setup_filter, upfirdn2d, upsample2d

__all__ = [
    "bias_act", "Conv2dLayer", "FullyConnectedLayer", "normalize_2nd_moment", "MinibatchStdLayer",
    "minibatch_stddev", "demodulate", "modulated_conv2d", "conv2d_resample", "downsample2d",
    "setup_filter", "upfirdn2d", "upsample2d",
]
