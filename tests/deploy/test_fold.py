"""Conv-BN folding: exact by PyTorch's own forward (folded vs original), on random layer
configurations, on zoo models, and on the models where torch.fx's fuser and fuse_modules fail
(ecosystem-notes.md)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.deploy import fold_batchnorm
from cnnkit.errors import UnsupportedError
from tests.model_guard import model_left_as_found

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
TRANSPOSED = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def randomise_norms(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Running statistics and affine parameters far from the identity a fresh BN holds."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            n = module.num_features
            with torch.no_grad():
                module.running_mean.copy_(torch.rand(n, generator=generator) * 2 - 1)
                module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
                if module.weight is not None:
                    module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                    module.bias.copy_(torch.rand(n, generator=generator) * 2 - 1)
    return model


@st.composite
def conv_configs(draw):
    dims = draw(st.integers(1, 3))
    transposed = draw(st.booleans())
    groups = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    dilation = draw(st.integers(1, 2))
    config = dict(
        in_channels=groups * draw(st.integers(1, 3)),
        out_channels=groups * draw(st.integers(1, 3)),
        kernel_size=draw(st.integers(1, 3)),
        stride=stride,
        dilation=dilation,
        padding=draw(st.integers(0, 2)),
        groups=groups,
        bias=draw(st.booleans()),
    )
    if transposed:
        config["output_padding"] = draw(st.integers(0, max(stride, dilation) - 1))
    # non-empty outputs: a conv needs d(k-1)+1, a transposed conv (n-1)s - 2p + d(k-1) + 1 > 0
    smallest = max(dilation * (config["kernel_size"] - 1) + 1, 5)
    size = draw(st.integers(smallest, smallest + (3 if dims < 3 else 1)))
    return dims, transposed, config, size, draw(st.integers(0, 2**16))


def conv_bn(dims, transposed, config, seed):
    layer = (TRANSPOSED if transposed else CONV)[dims](**config)
    model = nn.Sequential(layer, NORM[dims](config["out_channels"])).eval()
    return randomise_norms(model, torch.Generator().manual_seed(seed))


@given(conv_configs())
@settings(max_examples=40)
def test_conv_then_bn_folds_exactly(case):
    dims, transposed, config, size, seed = case
    model = conv_bn(dims, transposed, config, seed)
    shape = (config["in_channels"], *[size] * dims)
    with model_left_as_found(model):
        result = fold_batchnorm(model, shape)
    assert result.folded == [("0", "1")]
    assert isinstance(result.model[1], nn.Identity)
    x = torch.randn(3, *shape)
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x), atol=1e-5, rtol=0)
    assert result.max_error < 1e-5


@given(conv_configs())
@settings(max_examples=25)
def test_float64_fold_is_exact_to_1e10(case):
    dims, transposed, config, size, seed = case
    model = conv_bn(dims, transposed, config, seed).double()
    shape = (config["in_channels"], *[size] * dims)
    result = fold_batchnorm(model, shape)
    x = torch.randn(2, *shape, dtype=torch.float64)
    with torch.no_grad():
        assert (result.model(x) - model(x)).abs().max() < 1e-10
    assert result.max_error < 1e-10


@given(
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 3),
    st.sampled_from(["zeros", "reflect", "circular"]),
    st.integers(0, 1),
    st.integers(1, 2),
    st.integers(1, 2),
    st.booleans(),
    st.integers(0, 2**16),
)
@settings(max_examples=30)
def test_bn_then_conv_folds_exactly_unless_zero_padded(
    dims, groups, per_group, kernel, mode, padding, stride, dilation, bias, seed
):
    channels = groups * per_group
    conv = CONV[dims](channels, 2 * groups, kernel, groups=groups, padding=padding, stride=stride,
                      dilation=dilation, bias=bias, padding_mode=mode)  # fmt: skip
    model = randomise_norms(
        nn.Sequential(nn.ReLU(), NORM[dims](channels), conv).eval(),
        torch.Generator().manual_seed(seed),
    )
    shape = (channels, *[7] * dims)
    result = fold_batchnorm(model, shape)
    if padding and mode == "zeros":
        assert result.folded == []
        assert "zero padding" in result.skipped[0].reason
    else:
        assert result.folded == [("1", "2")]
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x), atol=1e-5, rtol=0)


@given(st.integers(1, 6), st.integers(1, 6), st.booleans(), st.booleans(), st.integers(0, 999))
@settings(max_examples=20)
def test_linear_and_batchnorm1d_fold_both_ways(n_in, n_out, bias, before, seed):
    if before:
        model = nn.Sequential(nn.BatchNorm1d(n_in), nn.Linear(n_in, n_out, bias=bias))
    else:
        model = nn.Sequential(nn.Linear(n_in, n_out, bias=bias), nn.BatchNorm1d(n_out))
    model = randomise_norms(model.eval(), torch.Generator().manual_seed(seed))
    result = fold_batchnorm(model, (n_in,))
    assert len(result.folded) == 1
    x = torch.randn(4, n_in)
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x), atol=1e-5, rtol=0)


def test_grouped_transposed_conv_folds():
    # torch.nn.utils.fusion raises on this one (ecosystem-notes.md)
    model = conv_bn(2, True, dict(in_channels=6, out_channels=9, kernel_size=3, groups=3,
                                  stride=2, output_padding=1), seed=1)  # fmt: skip
    result = fold_batchnorm(model, (6, 5, 5))
    assert result.folded == [("0", "1")]
    x = torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x), atol=1e-5, rtol=0)


class ReusedConv(nn.Module):
    """torch.fx's fuser folds bn into conv and so breaks the second path (max error 0.84)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.stem_bn = nn.BatchNorm2d(4)
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        x = self.stem_bn(self.stem(x))
        return self.bn(self.conv(x)) + self.conv(x.flip(-1))


def test_reused_conv_folds_only_the_safe_path():
    model = randomise_norms(ReusedConv().eval(), torch.Generator().manual_seed(0))
    with model_left_as_found(model):
        result = fold_batchnorm(model, (3, 8, 8))
    assert result.folded == [("stem", "stem_bn")]
    assert [s.name for s in result.skipped] == ["bn"]
    assert "conv is called 2 times" in result.skipped[0].reason
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x), atol=1e-5, rtol=0)


class MisleadingNames(nn.Module):
    """Module order says conv->bn; the forward says otherwise (fuse_modules: error 1.33)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return self.conv2(torch.relu(y)) + self.bn(y)


def test_pairs_come_from_the_graph_not_names():
    model = randomise_norms(MisleadingNames().eval(), torch.Generator().manual_seed(0))
    result = fold_batchnorm(model, (3, 8, 8))
    assert result.folded == []
    assert "also read by" in result.skipped[0].reason
    assert result.max_error == 0.0


class FunctionalBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.register_buffer("mean", torch.rand(4))
        self.register_buffer("var", torch.rand(4) + 0.5)

    def forward(self, x):
        return F.batch_norm(self.conv(x), self.mean, self.var, training=False)


def test_functional_bn_says_why():
    model = FunctionalBN().eval()
    result = fold_batchnorm(model, (3, 8, 8))
    assert result.folded == []
    assert "functional batch norm after conv" in result.skipped[0].reason


def test_bn_before_padded_conv_is_skipped_with_reason():
    model = randomise_norms(
        nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3, padding=1)).eval(),
        torch.Generator().manual_seed(0),
    )
    result = fold_batchnorm(model, (3, 8, 8))
    assert result.folded == []
    assert result.skipped[0].name == "0"
    assert "zero padding (1, 1)" in result.skipped[0].reason


def test_residual_branch_and_loop_are_seen():
    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList(nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))
            self.norms = nn.ModuleList(nn.BatchNorm2d(4) for _ in range(3))

        def forward(self, x):
            for conv, norm in zip(self.convs, self.norms, strict=True):
                x = x + norm(conv(x))  # residual branch: conv's output only read by its BN
            return x

    model = randomise_norms(Loop().eval(), torch.Generator().manual_seed(0))
    result = fold_batchnorm(model, (4, 6, 6))
    assert result.folded == [(f"convs.{i}", f"norms.{i}") for i in range(3)]
    assert result.max_error < 1e-5


def test_training_bn_and_missing_stats_are_skipped():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1),
        nn.BatchNorm2d(4, track_running_stats=False),
    ).eval()  # fmt: skip
    model[1].train()
    result = fold_batchnorm(model, (3, 4, 4))
    reasons = {s.name: s.reason for s in result.skipped}
    assert "training mode" in reasons["1"]
    assert "no running statistics" in reasons["3"]


def test_train_mode_model_is_refused_and_left_alone():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    with model_left_as_found(model), pytest.raises(UnsupportedError, match=r"model\.eval"):
        fold_batchnorm(model, (3, 4, 4))


# name -> batch norms that must fold (every one next to a conv; DenseNet's norm1 and the final
# norm read a concatenation and feed a ReLU: nothing to fold into)
ZOO = {
    "resnet50": 53,
    "mobilenet_v3_small": 34,
    "efficientnet_b0": 49,
    "convnext_tiny": 0,  # LayerNorm only
    "densenet121": 59,
    "googlenet": 57,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_models_fold_within_1e4(name):
    from cnnkit.analysis import summarize
    from cnnkit.models import create_model

    model = randomise_norms(create_model(name).eval(), torch.Generator().manual_seed(0))
    shape = (3, 32, 32)
    with model_left_as_found(model):
        result = fold_batchnorm(model, shape, batch_size=1)
    assert len(result.folded) == ZOO[name]
    assert len(result.folded) + len(result.skipped) == result.batch_norms
    assert result.max_error < 1e-4
    norms = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in result.model.modules())
    assert norms == result.batch_norms - ZOO[name]
    before, after = summarize(model, shape).total, summarize(result.model, shape).total
    assert after.params == sum(p.numel() for p in result.model.parameters())
    assert after.params < before.params or ZOO[name] == 0
    assert after.macs <= before.macs


@pytest.mark.parametrize("negative", [False, True])
def test_bn_after_a_max_pool_folds_only_with_positive_scales(negative):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(4))
    randomise_norms(model.eval(), torch.Generator().manual_seed(3))
    if negative:
        with torch.no_grad():
            model[2].weight[1] = -0.7
    result = fold_batchnorm(model, (3, 8, 8))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x), atol=1e-5, rtol=0)
    if negative:
        assert result.folded == [] and "not positive" in result.skipped[0].reason
    else:
        assert result.folded == [("0", "2")] and isinstance(result.model[2], nn.Identity)


def test_meta_weights_are_refused_in_one_line():
    with torch.device("meta"):
        model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).eval()
    with pytest.raises(UnsupportedError, match="meta device"):
        fold_batchnorm(model, (3, 4, 4))
