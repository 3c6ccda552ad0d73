"""Pure formulas of convolutional networks: ints and tuples in, ints and tuples out.

Output sizes, parameters, MACs, memory and receptive fields of single layers, each function
with its formula and the seed it comes from in the docstring (capabilities A1-A5, A7). This
package imports no torch; the tests check every formula against what PyTorch does.

Per-axis convention: a spatial argument is an int (the same on every axis) or one value per
axis; the number of spatial axes is the length of the longest sequence argument (1 when every
argument is an int), and results are tuples with one entry per axis.
"""

from __future__ import annotations

from cnnkit.arith.compare import compare_conv_types, compare_stacked_kernels
from cnnkit.arith.conv import (
    as_tuple,
    conv_macs,
    conv_macs_from_shapes,
    conv_output_size,
    conv_params,
    conv_transpose_macs,
    conv_transpose_output_size,
    d2l_output_size,
    depthwise_params,
    depthwise_separable_params,
    effective_kernel_size,
    padding_pairs,
    same_padding,
)
from cnnkit.arith.layer_spec import format_layer, parse_layers
from cnnkit.arith.linear import linear_macs, linear_macs_from_shape, linear_params
from cnnkit.arith.memory import (
    DTYPE_BYTES,
    activation_bytes,
    dtype_bytes,
    im2col_bytes,
    im2col_elements,
    training_activation_bytes,
)
from cnnkit.arith.norm import (
    batch_norm_buffers,
    batch_norm_params,
    group_norm_params,
    instance_norm_buffers,
    instance_norm_params,
    layer_norm_params,
)
from cnnkit.arith.pool import adaptive_pool_output_size, adaptive_pool_windows, pool_output_size
from cnnkit.arith.receptive_field import (
    Field,
    global_field,
    merge,
    receptive_field_table,
    step,
    transpose_step,
    upsample_step,
)
from cnnkit.arith.worked import (
    WorkedProblem,
    seed_problems,
    worked_conv,
    worked_im2col,
    worked_macs,
    worked_params,
    worked_pool,
    worked_receptive_field,
    worked_transpose,
)
from cnnkit.arith.worked_compare import worked_compare_conv_types, worked_stacked_kernels

__all__ = [
    "DTYPE_BYTES",
    "Field",
    "WorkedProblem",
    "activation_bytes",
    "adaptive_pool_output_size",
    "adaptive_pool_windows",
    "as_tuple",
    "batch_norm_buffers",
    "batch_norm_params",
    "compare_conv_types",
    "compare_stacked_kernels",
    "conv_macs",
    "conv_macs_from_shapes",
    "conv_output_size",
    "conv_params",
    "conv_transpose_macs",
    "conv_transpose_output_size",
    "d2l_output_size",
    "depthwise_params",
    "depthwise_separable_params",
    "dtype_bytes",
    "effective_kernel_size",
    "format_layer",
    "global_field",
    "group_norm_params",
    "im2col_bytes",
    "im2col_elements",
    "instance_norm_buffers",
    "instance_norm_params",
    "layer_norm_params",
    "linear_macs",
    "linear_macs_from_shape",
    "linear_params",
    "merge",
    "padding_pairs",
    "parse_layers",
    "pool_output_size",
    "receptive_field_table",
    "same_padding",
    "seed_problems",
    "step",
    "training_activation_bytes",
    "transpose_step",
    "upsample_step",
    "worked_compare_conv_types",
    "worked_conv",
    "worked_im2col",
    "worked_macs",
    "worked_params",
    "worked_pool",
    "worked_receptive_field",
    "worked_stacked_kernels",
    "worked_transpose",
]
