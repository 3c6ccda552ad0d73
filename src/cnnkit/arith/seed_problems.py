"""The worked problems printed in the seeds, recomputed (capability A7).

Each problem is built from the worked_* functions, so its numbers are cnnkit's formulas; the
tests compare them with PyTorch and with docs/reference-figures.md. Where a seed's printed
figure is approximate or wrong, the problem's ``note`` says what the seed claimed.
"""

from __future__ import annotations

from cnnkit.arith.layer_spec import parse_layers
from cnnkit.arith.worked import (
    WorkedProblem,
    worked_conv,
    worked_im2col,
    worked_pool,
    worked_receptive_field,
)
from cnnkit.arith.worked_compare import worked_compare_conv_types, worked_stacked_kernels

__all__ = ["build_seed_problems"]


def _with(problem: WorkedProblem, title: str, source: str, note: str = "") -> WorkedProblem:
    problem.title, problem.source, problem.note = title, source, note
    return problem


def _output_and_parameters() -> WorkedProblem:
    conv = worked_conv((224, 224), 7, stride=2, padding=3, in_channels=3, out_channels=64)
    pool = worked_pool((112, 112), 3, stride=2)
    steps = [f"Conv: {line}" for line in conv.steps] + [f"MaxPool: {line}" for line in pool.steps]
    result = {
        "conv_output": conv.result["output_size"],
        "params": conv.result["params"],
        "pool_output": pool.result["output_size"],
    }
    title = "224x224x3 -> Conv7x7@64 s2 p3 -> MaxPool3x3 s2 (p0)"
    return WorkedProblem(title, steps, result, source="000 §6 problem 1")


def build_seed_problems() -> list[WorkedProblem]:
    """000 §6 problems 1-3, 002's im2col bill, 003's LeNet fields, 000 §2.3's and 001's examples."""
    return [
        _output_and_parameters(),
        _with(
            worked_receptive_field(parse_layers("k3,k3,poolk2s2,k3")),
            "Receptive field of Conv3x3 -> Conv3x3 -> Pool2x2 s2 -> Conv3x3",
            "000 §6 problem 2",
        ),
        _with(
            worked_conv((56, 56), 3, stride=1, padding=1, in_channels=64, out_channels=128),
            "MACs of 56x56x64 -> Conv3x3@128 s1 p1",
            "000 §6 problem 3",
            "the seed gives about 231M MACs and 462M FLOPs; exactly 231,211,008 and 462,422,016",
        ),
        _with(
            worked_im2col(32, 64, 3, (224, 224), padding="same", dtype="float16"),
            "im2col bill of B=32, C_in=64, 224x224, K=3, same padding, FP16",
            "002 im2col Memory Bill",
            "the seed gives about 9.25e8 elements and 1.85 GB; exactly 924,844,032 elements, "
            "1,849,688,064 bytes (1.85 GB = 1.72 GiB)",
        ),
        _with(
            worked_receptive_field(parse_layers("k5p2,poolk2s2,k5,poolk2s2")),
            "LeNet-5 receptive fields: conv1, pool1, conv2, pool2",
            "003 §4.1",
        ),
        _with(
            worked_receptive_field(parse_layers("k3,poolk2s2,k3")),
            "Receptive field of Conv3x3 -> Pool2x2 s2 -> Conv3x3",
            "000 §2.3",
        ),
        _with(
            worked_receptive_field(
                parse_layers("k3p1,k3p1,poolk2s2," * 2 + "k3p1," * 3 + "poolk2s2")
            ),
            "Receptive field of the VGG-style stack (3x3 convs and 2x2 pools)",
            "001 example 4",
        ),
        _with(
            worked_compare_conv_types(64, 128, 3, groups=8),
            "Conv types for 64 -> 128 channels, 3x3 (params with bias, MACs per output position)",
            "001 compare_conv_types",
            "the seed's parameter counts agree; its 'saving' line divides the separable count "
            "(with biases) by 73,728 (standard without bias): 87.8% instead of 87.9%",
        ),
        _with(
            worked_stacked_kernels(2),
            "Two 3x3 convs vs one 5x5",
            "001 VGGBlock, 003 Q&A",
        ),
        _with(
            worked_stacked_kernels(3),
            "Three 3x3 convs vs one 7x7",
            "001 VGGBlock",
        ),
    ]
