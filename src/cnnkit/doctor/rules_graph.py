"""Static rules on the shape of the captured graph: how tensors flow between layers, what the
stem does to the resolution, the receptive field, views, residual adds, the head, and which
ops still behave as in training when the model is in eval mode (evidence: ``graph``; free).
"""

from __future__ import annotations

from collections.abc import Iterator

from cnnkit.doctor.checks import Hit, check
from cnnkit.doctor.context import (
    BATCH_NORM_OPS,
    DROPOUT_OPS,
    MATMUL_OPS,
    SHAPE_OPS,
    Context,
    spatial,
)

_ADAPTIVE = frozenset(
    {
        "_adaptive_avg_pool2d",
        "adaptive_avg_pool2d",
        "adaptive_max_pool2d",
        "_adaptive_avg_pool3d",
        "adaptive_max_pool3d",
        "adaptive_avg_pool1d",
        "adaptive_max_pool1d",
    }
)
_DROPOUT_TYPES = (
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
)


def _fmt(values: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in values)


@check(
    "inplace-overwrites-input",
    severity="error",
    source="003 Q&A (inplace=True: do not rewrite a tensor the residual path still needs)",
    checks="an in-place op that rewrites a module's input which the same module reads again "
    "afterwards (the classic `relu_(x)` before `out + x`): wrong values, no autograd error",
    fix="make that op out of place (inplace=False, or x = x.relu()) so the later read sees "
    "the original values",
)
def inplace_overwrites_input(ctx: Context) -> Iterator[Hit]:
    graph = ctx.graph
    for node in graph.nodes[1:]:
        if not node.is_data or not node.name.endswith("_") or node.name.startswith("_"):
            continue
        if not node.fresh or node.fresh[0]:
            continue
        target = node.inputs[0] if node.inputs else None
        if target is None or target.producer is None:
            continue
        call = ctx.call_of(node)
        parent = graph.calls[call.parent] if call.parent is not None else call
        # the rewritten tensor came into the enclosing module from outside
        if not any(ref.producer == target.producer for ref in parent.inputs):
            continue
        written = (node.index, 0)
        inside = _subtree(ctx, parent.index)
        readers = [
            other
            for other in graph.nodes[node.index + 1 :]
            if other.call in inside and any(r.producer == written for r in other.inputs)
        ]
        if len(readers) >= 2:
            confirmed = ""
            if ctx.probe is not None and ctx.probe.inplace_changes_output:
                confirmed = " (probe: the output changes with inplace=False)"
            yield Hit(
                ctx.where(node),
                f"{node.name} rewrites the input of {parent.name or parent.type} in place, and "
                f"{ctx.where(readers[-1])} reads that input again afterwards: it gets the "
                f"rewritten values, not the original ones{confirmed}",
            )


def _subtree(ctx: Context, root: int) -> set[int]:
    calls = ctx.graph.calls
    inside = {root}
    for call in calls[root + 1 :]:
        if call.parent in inside:
            inside.add(call.index)
    return inside


@check(
    "early-downsampling",
    severity="warning",
    source="002 Implementation Checklist (stride/pooling losing resolution too early); 003 "
    "(small_input)",
    checks="the stem shrinks the input by 4x or more before the second conv, leaving 8 "
    "pixels or fewer per side (an ImageNet stem on 28x28)",
    fix="use a small-input stem: a 3x3 stride-1 conv and no max-pool (cnnkit's ResNets: "
    "small_input=True)",
)
def early_downsampling(ctx: Context) -> Iterator[Hit]:
    convs = [n for n in ctx.nodes("convolution") if len(n.output_shape) >= 3]
    if len(convs) < 2 or len(ctx.input_shape) < 3:
        return
    second = convs[1]
    size_in = spatial(ctx.input_shape)
    size_at = spatial(second.arg("input").shape)
    if len(size_at) != len(size_in) or not size_at:
        return
    factor = min(a / b for a, b in zip(size_in, size_at, strict=True))
    if factor < 4 or min(size_at) > 8:
        return
    last = None
    for node in ctx.graph.nodes[1 : second.index]:
        data = node.data_inputs
        shrinks = data and len(node.output_shape) == len(data[0].shape) >= 3
        if shrinks and spatial(node.output_shape) < spatial(data[0].shape):
            last = node
    where = ctx.where(last) if last is not None else ctx.where(second)
    yield Hit(
        where,
        f"the stem shrinks the {_fmt(size_in)} input to {_fmt(size_at)} ({factor:g}x) before "
        f"{ctx.where(second)}: the rest of the network sees 8 pixels or fewer per side",
    )


@check(
    "rf-smaller-than-input",
    severity="warning",
    source="002 Implementation Checklist (receptive field covers the context the task needs)",
    checks="the receptive field of the last spatial layer covers less than half the input "
    "(or less than --object-size)",
    fix="add depth, dilation or downsampling before the last spatial layer, or a global "
    "context block",
)
def rf_smaller_than_input(ctx: Context) -> Iterator[Hit]:
    total = ctx.summary.total if ctx.summary is not None else None
    if total is None or total.rf is None or total.rf_layer is None:
        return
    extent = spatial(ctx.input_shape)
    for axis, rf in enumerate(total.rf):
        if rf is None or (total.rf_global and total.rf_global[axis]) or axis >= len(extent):
            continue
        target: float
        if ctx.object_size is not None:
            target, what = ctx.object_size, f"the object size {ctx.object_size}"
        else:
            target = ctx.rf_share * extent[axis]
            what = f"{ctx.rf_share:.0%} of the input's {extent[axis]}"
        if rf < target:
            yield Hit(
                total.rf_layer,
                f"the last spatial layer sees {rf} pixels along {_axis(axis, len(extent))}, "
                f"less than {what}: "
                "no output can relate the parts of a larger object",
            )
            return


def _axis(axis: int, ndim: int) -> str:
    names = {1: "L", 2: "HW", 3: "DHW"}.get(ndim)
    return names[axis] if names else f"axis {axis}"


@check(
    "view-needs-contiguous",
    severity="error",
    source="002 Implementation Checklist (channels_last and .view)",
    checks="a `.view` that merges the channel axis of a 4-D map with its spatial axes: it "
    "fails when the model runs channels_last (cnnkit train's default)",
    fix="use torch.flatten(x, 1) or .reshape(...) (they copy when needed), or "
    ".contiguous().view(...)",
)
def view_needs_contiguous(ctx: Context) -> Iterator[Hit]:
    import torch

    for call in ctx.graph.calls:
        if call.kind != "function" or call.type != "view":
            continue
        for index in call.nodes:
            node = ctx.graph.nodes[index]
            data = node.arg("self")
            if node.name != "view" or data is None or len(data.shape) != 4:
                continue
            _, c, h, w = data.shape
            if c == 1 or h * w == 1:  # both layouts then agree
                continue
            producer = ctx.graph.producer_node(data)
            if producer is not None and producer.name in ("clone", "contiguous"):
                continue
            probe = torch.empty(data.shape, device="meta").to(memory_format=torch.channels_last)
            try:
                probe.view([int(s) for s in node.arg("size")])
            except RuntimeError:
                yield Hit(
                    call.name,
                    f".view(N, {', '.join(str(v) for v in node.output_shape[1:])}) of an "
                    f"N x {_fmt(data.shape[1:])} map: under "
                    "channels_last its channel stride is 1, so merging channels with space "
                    "is not a view and raises",
                )


@check(
    "residual-shape-broadcast",
    severity="error",
    source="002 Implementation Checklist (residual add: same shape, stride, dtype)",
    checks="an add or concat of two computed tensors whose shapes broadcast or whose dtypes differ",
    fix="match the shortcut to the main path: a 1x1 conv with the same stride (and BN) on "
    "the shortcut, and the same dtype on both",
)
def residual_shape_broadcast(ctx: Context) -> Iterator[Hit]:
    for node in ctx.nodes("add", "add_", "sub", "sub_", "cat"):
        data = node.data_inputs
        if len(data) < 2:
            continue
        dtypes = sorted({ref.dtype for ref in data})
        if len(dtypes) > 1:
            yield Hit(
                ctx.where(node),
                f"{node.name} of {' and '.join(dtypes)} tensors: type promotion changes the "
                "result's dtype (and doubles memory under mixed precision)",
                severity="warning",
            )
            continue
        if node.name == "cat":
            continue
        shapes = [ref.shape for ref in data]
        out = node.output_shape
        # Two maps of one rank are a residual; a scalar or lower-rank term (x - x.mean()) is not.
        if len(set(shapes)) == 1 or any(len(s) != len(out) or len(s) < 3 for s in shapes):
            continue
        gate = all(s == out or (s[:2] == out[:2] and all(v == 1 for v in s[2:])) for s in shapes)
        yield Hit(
            ctx.where(node),
            f"{node.name} of {' and '.join(_fmt(s) for s in shapes)} broadcasts to {_fmt(out)}"
            + (
                ": a per-channel term added to every position (pooled context?)"
                if gate
                else ": positions or channels are repeated silently, not matched"
            ),
            severity="info" if gate else None,
        )


@check(
    "fixed-input-size",
    severity="info",
    source="001 (SPP: adaptive pooling frees the input size)",
    checks="a linear layer fed by a flattened spatial map (more than 1x1) that no adaptive "
    "pooling fixed: the model works at one input resolution only",
    fix="put nn.AdaptiveAvgPool2d before the flatten (then any input size works)",
)
def fixed_input_size(ctx: Context) -> Iterator[Hit]:
    for node in ctx.nodes(*MATMUL_OPS):
        ref = node.arg("mat1") if node.name == "addmm" else node.arg("self")
        while ref is not None and ref.producer is not None:
            producer = ctx.graph.nodes[ref.producer[0]]
            source = producer.data_inputs[0] if producer.data_inputs else None
            if producer.name not in SHAPE_OPS or source is None:
                break
            if len(source.shape) >= 3 and len(producer.output_shape) == 2:
                flat = producer.output_shape[-1]
                spatial_size = 1
                for v in source.shape[2:]:
                    spatial_size *= v
                before = ctx.graph.producer_node(source)
                adaptive = before is not None and before.name in _ADAPTIVE
                if flat == source.numel // source.shape[0] and spatial_size > 1 and not adaptive:
                    yield Hit(
                        ctx.where(node),
                        f"takes a flattened {_fmt(source.shape[1:])} map: its weights fit "
                        f"{_fmt(ctx.input_shape[2:])} inputs only",
                    )
                break
            ref = source


@check(
    "dropout-before-bn",
    severity="warning",
    source="001 (Dropout and BatchNorm); Li et al. 2019, variance shift",
    checks="dropout whose output reaches BatchNorm directly or through one conv/linear",
    fix="move dropout after the last BatchNorm (before the classifier), or drop it",
)
def dropout_before_bn(ctx: Context) -> Iterator[Hit]:
    calls = ctx.graph.calls
    readers: dict[int, list[int]] = {}
    for call in calls:
        if call.is_row:
            for ref in call.inputs:
                if ref.source_call is not None and ref.source_call >= 0:
                    readers.setdefault(ref.source_call, []).append(call.index)
    for call in calls:
        if not call.is_row or call.type not in _DROPOUT_TYPES:
            continue
        frontier = [(r, 0) for r in readers.get(call.index, [])]
        while frontier:
            index, hops = frontier.pop()
            reader = calls[index]
            if reader.type.startswith("BatchNorm") or any(
                ctx.graph.nodes[i].name in BATCH_NORM_OPS for i in reader.nodes
            ):
                yield Hit(
                    reader.name,
                    f"normalises the output of {call.name} ({call.type}): its running "
                    "variance is learned with dropout's scaling and is wrong at test time",
                )
                frontier = []
                break
            if hops == 0 and reader.type in ("Conv1d", "Conv2d", "Conv3d", "Linear"):
                frontier.extend((r, 1) for r in readers.get(index, []))


@check(
    "eval-batch-dependence",
    severity="error",
    source="001 常见误区 (BN train/eval mode); 002 Implementation Checklist (BN modes)",
    checks="after model.eval(), an op that still normalises with batch statistics or drops "
    "units: one image's output depends on the rest of its batch (or on chance)",
    fix="let the module follow self.training (F.batch_norm(..., training=self.training)); do "
    "not override train()/eval() to keep it in training mode",
)
def eval_batch_dependence(ctx: Context) -> Iterator[Hit]:
    seen = set()
    for node in ctx.nodes(*BATCH_NORM_OPS, *DROPOUT_OPS):
        where = ctx.where(node)
        if where in seen:
            continue
        if node.name in BATCH_NORM_OPS:
            training = node.arg("training", None)
            if node.name == "_native_batch_norm_legit_no_training" or training is False:
                continue
            if node.name == "_native_batch_norm_legit" and training is None:
                training = True
            if not training:
                continue
            what = "normalises with the batch's mean and variance"
        else:
            if node.name == "native_dropout" and node.arg("train") is False:
                continue
            what = "drops units at random"
        seen.add(where)
        yield Hit(where, f"in eval mode it still {what}: predictions depend on the batch")


@check(
    "modules-in-eval",
    severity="warning",
    source="001 常见误区 (train/eval mode switching)",
    checks="a model in training mode that holds submodules in eval mode (a frozen part left "
    "in eval): their BatchNorm/Dropout behave differently than the rest",
    fix="call model.train() before training (and freeze parameters with requires_grad=False "
    "instead of eval())",
)
def modules_in_eval(ctx: Context) -> Iterator[Hit]:
    flags = ctx.flags_before
    if not flags.get("", False):
        return
    reported: list[str] = []
    for name, training in flags.items():
        if training or not name:
            continue
        if any(name.startswith(r + ".") for r in reported):
            continue
        reported.append(name)
        yield Hit(name, "is in eval mode while the model is in training mode")
