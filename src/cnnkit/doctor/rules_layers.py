"""Static rules on single layers of the captured graph (evidence: ``graph``; free).

Each reads ``aten.convolution`` / pooling / matmul nodes and their recorded arguments; the
formulas (effective kernel, parameter counts) come from :mod:`cnnkit.arith`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from cnnkit.arith.conv import conv_params, effective_kernel_size
from cnnkit.doctor.checks import Hit, check
from cnnkit.doctor.context import (
    BATCH_NORM_OPS,
    DROPOUT_OPS,
    MATMUL_OPS,
    SHAPE_OPS,
    Context,
    conv_geometry,
    spatial,
)

if TYPE_CHECKING:
    from cnnkit.analysis.graph import Node

_POOL_OPS = (
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
)
# Linear in their input: followed when looking for two linear maps in a row.
_LINEAR_PASS = (
    SHAPE_OPS
    | DROPOUT_OPS
    | {
        "avg_pool1d",
        "avg_pool2d",
        "avg_pool3d",
        "mean",
        "_adaptive_avg_pool2d",
        "adaptive_avg_pool2d",
        "_adaptive_avg_pool3d",
    }
)


def _fmt(values: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in values)


def first_of(hits: Iterator[Hit], what: str) -> Iterator[Hit]:
    """One hit for a rule that fires on many layers alike: the first, naming how many more."""
    collected = list(hits)
    if collected:
        first = collected[0]
        more = f" (and {len(collected) - 1} later {what})" if len(collected) > 1 else ""
        yield first._replace(message=first.message + more)


@check(
    "conv-bias-before-bn",
    severity="info",
    source="003 Q&A (why bias=False before BatchNorm)",
    checks="a conv with a bias whose output goes straight into BatchNorm",
    fix="build the conv with bias=False: BatchNorm's beta already shifts each channel",
)
def conv_bias_before_bn(ctx: Context) -> Iterator[Hit]:
    return first_of(_biases_before_bn(ctx), "convs")


def _biases_before_bn(ctx: Context) -> Iterator[Hit]:
    for node in ctx.nodes("convolution"):
        geometry = conv_geometry(node)
        if geometry["bias"] is None:
            continue
        readers, _ = ctx.downstream(node.index, ())
        if readers and all(r.name in BATCH_NORM_OPS for r in readers):
            channels = geometry["out_channels"]
            yield Hit(
                ctx.where(node),
                f"its {channels} bias values feed {ctx.where(readers[0])} (BatchNorm), which "
                "subtracts the batch mean: the bias has no effect and its gradient is zero",
            )


@check(
    "missing-nonlinearity",
    severity="warning",
    source="000 section 7; 001 (stacked small kernels need a non-linearity between)",
    checks="two learned linear maps (dense conv/linear) in a row with only reshapes, dropout "
    "or average pooling between (normalisation between: a deliberate linear bottleneck; a "
    "grouped conv: a factorised filter)",
    fix="put an activation (ReLU, GELU, ...) between them, or merge them into one layer",
)
def missing_nonlinearity(ctx: Context) -> Iterator[Hit]:
    linear = {"convolution", *MATMUL_OPS}
    for node in ctx.nodes(*linear):
        if _grouped(node):
            continue
        readers, _ = ctx.downstream(node.index, _LINEAR_PASS)
        for reader in readers:
            other_layer = ctx.where(reader) != ctx.where(node)
            if reader.name in linear and not _grouped(reader) and other_layer:
                yield Hit(
                    ctx.where(reader),
                    f"takes the output of {ctx.where(node)} with no non-linearity between: "
                    "two linear maps collapse to one, so the extra layer adds parameters, "
                    "not capacity",
                )
                break


def _grouped(node: Node) -> bool:
    """A grouped or depthwise conv: with a dense conv beside it, a deliberate factorisation
    of one filter (separable convs, ConvNeXt's downsample + depthwise), not a redundancy."""
    return node.name == "convolution" and conv_geometry(node)["groups"] > 1


@check(
    "softmax-before-loss",
    severity="error",
    source="001 排错清单 (loss not falling); PyTorch CrossEntropyLoss takes logits",
    checks="a model whose output is made by softmax (cross-entropy applies log-softmax again)",
    fix="return the logits; cross-entropy applies log-softmax itself (use softmax only to "
    "report probabilities)",
)
def softmax_before_loss(ctx: Context) -> Iterator[Hit]:
    for index in sorted(ctx.output_nodes):
        node = ctx.graph.nodes[index]
        if node.name in ("_softmax", "softmax"):
            yield Hit(
                ctx.where(node),
                "the model ends in softmax and cnnkit's trainer feeds its output to "
                "cross-entropy: the loss is log-softmax of probabilities, its gradients shrink "
                "and training stalls",
            )
        elif node.name in ("_log_softmax", "log_softmax"):
            yield Hit(
                ctx.where(node),
                "the model ends in log-softmax: cross-entropy on it gives the same loss "
                "(log-softmax is idempotent) but the outputs are not logits for other losses",
                severity="info",
            )


@check(
    "kernel-exceeds-input",
    severity="warning",
    source="002 Implementation Checklist (output size with the effective kernel)",
    checks="a conv or pooling window larger than its unpadded input at this input size "
    "(larger than the padded input: an error, the output would be empty)",
    fix="use a larger input, a smaller kernel or dilation, or fewer downsampling layers "
    "before this one",
)
def kernel_exceeds_input(ctx: Context) -> Iterator[Hit]:
    return first_of(_kernels_exceeding(ctx), "layers")


def _kernels_exceeding(ctx: Context) -> Iterator[Hit]:
    for node in ctx.nodes("convolution", *_POOL_OPS):
        data = node.arg("input") if node.name == "convolution" else node.arg("self")
        if data is None or len(data.shape) < 3:
            continue
        extent = spatial(data.shape)
        if node.name == "convolution":
            geometry = conv_geometry(node)
            if geometry["transposed"]:
                continue
            window = effective_kernel_size(geometry["kernel"], geometry["dilation"])
        else:
            kernel = node.arg("kernel_size")
            kernel = (kernel,) * len(extent) if isinstance(kernel, int) else tuple(kernel)
            kernel = kernel * len(extent) if len(kernel) == 1 else kernel
            dilation = node.arg("dilation", 1) or 1
            dilation = (dilation,) if isinstance(dilation, int) else tuple(dilation)
            dilation = dilation * len(kernel) if len(dilation) == 1 else dilation
            window = effective_kernel_size(kernel, dilation)
        if any(w > n for w, n in zip(window, extent, strict=False)):
            yield Hit(
                ctx.where(node),
                f"its {_fmt(window)} window is larger than its {_fmt(extent)} input at input "
                f"{_fmt(ctx.input_shape[2:])}: part of every window always reads padding",
            )


def transposed_coverage_spread(kernel: int, stride: int) -> tuple[int, int]:
    """(fewest, most) kernel taps that reach an interior output of a transposed conv (002).

    Input i reaches outputs i s + a (a in [0, k)), so an interior output u gets the taps a with
    a = u mod s (mod s): floor(k/s) or ceil(k/s) of them; uniform exactly when s divides k.
    """
    return kernel // stride, -(-kernel // stride)


@check(
    "checkerboard-transposed-conv",
    severity="warning",
    source="002 Implementation Checklist (upsampling without checkerboard artifacts)",
    checks="a transposed conv whose kernel is not divisible by its stride (uneven overlap)",
    fix="use a kernel divisible by the stride (k=4, s=2), or resize + conv, or PixelShuffle",
)
def checkerboard_transposed_conv(ctx: Context) -> Iterator[Hit]:
    for node in ctx.nodes("convolution"):
        geometry = conv_geometry(node)
        if not geometry["transposed"]:
            continue
        for k, s in zip(geometry["kernel"], geometry["stride"], strict=True):
            if s > 1 and k % s:
                low, high = transposed_coverage_spread(k, s)
                yield Hit(
                    ctx.where(node),
                    f"kernel {k} is not divisible by stride {s}: interior outputs get {low} or "
                    f"{high} taps alternately, a checkerboard pattern",
                )
                break


@check(
    "asymmetric-padding",
    severity="warning",
    source="002 Implementation Checklist (padding semantics)",
    checks="a conv fed by unequal left/right padding (a 'same' conv with an even effective "
    "kernel): the output map is shifted by half a pixel",
    fix="use an odd kernel (3, 5) so 'same' padding is symmetric",
)
def asymmetric_padding(ctx: Context) -> Iterator[Hit]:
    for node in ctx.nodes("constant_pad_nd"):
        pad = [int(p) for p in node.arg("pad")]
        pairs = [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)]
        readers, _ = ctx.downstream(node.index, SHAPE_OPS)
        for reader in readers:
            if reader.name != "convolution":
                continue
            ndim = conv_geometry(reader)["ndim"]
            if ndim == 1 and pairs[0][1] == 0:  # left-only on a sequence: causal, on purpose
                continue
            uneven = [(left, right) for left, right in pairs if left != right]
            if uneven:
                left, right = uneven[0]
                yield Hit(
                    ctx.where(reader),
                    f"its input is padded {left} before and {right} after on an axis: the "
                    "output grid is shifted by half a pixel against the input",
                )


@check(
    "causal-conv-symmetric-padding",
    severity="error",
    source="002 Implementation Checklist (causal conv pads only on the left)",
    checks="a Conv1d flagged causal (attribute causal=True, or in a module named causal) "
    "that pads both sides: outputs see future inputs",
    fix="set padding=0 and pad (dilation*(k-1), 0) on the left only (F.pad), or trim the "
    "right side of the output",
)
def causal_conv_symmetric_padding(ctx: Context) -> Iterator[Hit]:
    for node in ctx.nodes("convolution"):
        geometry = conv_geometry(node)
        if geometry["ndim"] != 1 or geometry["transposed"]:
            continue
        call = ctx.call_of(node)
        causal = any(
            "causal" in c.name.lower() or bool(getattr(c.module, "causal", False) is True)
            for c in ctx.ancestors(call)
        )
        if causal and geometry["padding"][0] > 0:
            pad = geometry["padding"][0]
            where = ctx.where(node)
            confirmed = ""
            leaks = ctx.probe.causal_leaks if ctx.probe is not None else {}
            if any(leaks.get(c.name) for c in ctx.ancestors(ctx.call_of(node))):
                confirmed = " (probe: changing later inputs changed earlier outputs)"
            yield Hit(
                where,
                f"a causal conv padded {pad} on both sides: output t reads inputs up to "
                f"t+{pad}, so the model sees the future{confirmed}",
            )


@check(
    "depthwise-without-pointwise",
    severity="warning",
    source="002 Implementation Checklist (grouped/depthwise conv); 001 (separable conv)",
    checks="a depthwise conv whose output reaches another grouped conv or the model output "
    "with no channel-mixing layer (groups=1 conv, linear) between",
    fix="follow the depthwise conv with a 1x1 conv (depthwise separable), as MobileNet does",
)
def depthwise_without_pointwise(ctx: Context) -> Iterator[Hit]:
    for node in ctx.nodes("convolution"):
        geometry = conv_geometry(node)
        groups = geometry["groups"]
        if groups == 1 or groups != geometry["in_channels"]:
            continue
        stack, seen = [node.index], {node.index}
        reason = None
        while stack and reason is None:
            index = stack.pop()
            if index in ctx.output_nodes and index != node.index:
                reason = "the model output"
            for reader in ctx.consumers.get(index, ()):
                if reader in seen:
                    continue
                seen.add(reader)
                other = ctx.graph.nodes[reader]
                if other.name in MATMUL_OPS:
                    continue
                if other.name == "convolution":
                    if conv_geometry(other)["groups"] == 1:
                        continue
                    reason = f"{ctx.where(other)} (another grouped conv)"
                    break
                stack.append(reader)
            if index in ctx.output_nodes and reason is None:
                reason = "the model output"
        if reason is not None:
            yield Hit(
                ctx.where(node),
                f"its per-channel output reaches {reason} without a channel-mixing layer: "
                "channels never exchange information",
            )


@check(
    "large-kernel-stack",
    severity="info",
    source="001 (two 3x3 = one 5x5); 003 Q&A (3x3 stacks, VGG)",
    checks="a dense conv with a kernel of 5 or more inside the network (stems and depthwise "
    "convs excepted)",
    fix="use a stack of 3x3 convs: the same receptive field, fewer parameters, more non-linearity",
)
def large_kernel_stack(ctx: Context) -> Iterator[Hit]:
    for node in ctx.nodes("convolution"):
        geometry = conv_geometry(node)
        data = node.arg("input")
        if geometry["transposed"] or geometry["groups"] != 1 or data.producer == (0, 0):
            continue
        kernel = geometry["kernel"]
        if min(kernel) < 5 or len(set(kernel)) != 1 or kernel[0] % 2 == 0:
            continue
        depth = (kernel[0] - 1) // 2
        c_in, c_out = geometry["in_channels"], geometry["out_channels"]
        single = conv_params(c_in, c_out, kernel, bias=False)
        stacked = conv_params(c_in, c_out, (3,) * len(kernel), bias=False) + (depth - 1) * (
            conv_params(c_out, c_out, (3,) * len(kernel), bias=False)
        )
        if stacked >= single:
            continue
        yield Hit(
            ctx.where(node),
            f"a {_fmt(kernel)} conv ({single:,} weights); {depth} stacked 3x3 convs see the "
            f"same {kernel[0]}-pixel field with {stacked:,} weights and {depth - 1} more "
            "non-linearities",
        )


@check(
    "channels-not-multiple-of-8",
    severity="info",
    source="000 section 7 (slow training); measured: airnet's 18 -> 16 channels, 20% faster "
    "(train/recipes.py)",
    checks="a conv whose input or output channels (above 8) are not a multiple of 8, except "
    "the model input and the classifier",
    fix="round the channel count to a multiple of 8 (oneDNN blocks of 8/16, tensor cores)",
)
def channels_not_multiple_of_8(ctx: Context) -> Iterator[Hit]:
    return first_of(_odd_channels(ctx), "convs")


def _odd_channels(ctx: Context) -> Iterator[Hit]:
    for node in ctx.nodes("convolution"):
        geometry = conv_geometry(node)
        counts = []
        if node.arg("input").producer != (0, 0):
            counts.append(("input", geometry["in_channels"]))
        if node.index not in ctx.output_nodes:
            counts.append(("output", geometry["out_channels"]))
        odd = [(side, c) for side, c in counts if c > 8 and c % 8]
        if odd:
            side, channels = odd[0]
            padded = math.ceil(channels / 8) * 8
            yield Hit(
                ctx.where(node),
                f"{channels} {side} channels: vectorised kernels pad them to {padded} "
                f"({padded - channels} channels of wasted work)",
            )
