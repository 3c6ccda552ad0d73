"""The inputs users bring from torchinfo: a shape, several shapes, example tensors, tuples and
dicts of tensors, integer dtypes; a shape with the batch in it; print(summary)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.analysis import summarize
from cnnkit.analysis.render import render_table
from cnnkit.errors import CnnkitError, ConfigError, ShapeError
from cnnkit.models import create_model
from tests.analysis.models import TinyResNet
from tests.model_guard import model_left_as_found


class ImageAndTokens(nn.Module):
    """Two inputs: an image and integer token ids (the second one optional, by keyword)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 8)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)

    def forward(self, image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(image).mean((2, 3)) + self.embed(tokens).mean(1))


def _flops(model: nn.Module, *args: torch.Tensor, **kwargs: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        model(*args, **kwargs)
    return counter.get_total_flops()


@settings(max_examples=10)
@given(st.integers(1, 3), st.integers(4, 12), st.integers(1, 9))
def test_every_way_of_giving_two_inputs_agrees_with_the_flop_counter(batch, size, length):
    model = ImageAndTokens()
    image = torch.randn(batch, 3, size, size)
    tokens = torch.randint(0, 100, (batch, length))
    expected = _flops(model, image, tokens)
    with model_left_as_found(model):
        summaries = [
            summarize(model, [(3, size, size), (length,)], dtypes=[torch.float32, torch.long],
                      batch_size=batch),
            summarize(model, input_data=(image, tokens)),
            summarize(model, input_data=[image, tokens]),
            summarize(model, input_data={"image": image, "tokens": tokens}),
        ]  # fmt: skip
    for summary in summaries:
        assert 2 * summary.total.macs == expected
        assert summary.input_shapes == ((batch, 3, size, size), (batch, length))
        assert summary.input_shape == (batch, 3, size, size)
        assert summary.layers[-1].output_shape == (batch, 4)
        assert summary.to_dict()["input_shapes"] == [[batch, 3, size, size], [batch, length]]


def test_an_example_tensor_gives_the_same_summary_as_its_shape():
    model = TinyResNet()
    by_shape = summarize(model, (3, 16, 16), batch_size=2)
    by_tensor = summarize(model, input_data=torch.randn(2, 3, 16, 16))
    assert by_tensor.to_dict() == by_shape.to_dict()


def test_a_forward_that_must_run_for_real_uses_the_example_values():
    class Indexing(nn.Module):
        def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            return x[:, : int(index.max()) + 1]  # data-dependent: needs the real values

    index = torch.tensor([[2]])
    summary = summarize(Indexing(), input_data=(torch.randn(1, 5, 4), index))
    assert summary.device == "cpu" and summary.layers[-1].output_shape == (1, 3, 4)


def test_a_shape_with_the_batch_in_it_says_the_batch_is_separate():
    with pytest.raises(ShapeError, match="the batch is separate") as error:
        summarize(create_model("lenet5"), (1, 1, 28, 28))
    assert "input_size=(1, 28, 28)" in str(error.value) and "\n" not in str(error.value)


def test_an_input_too_small_is_not_mistaken_for_a_batch():
    with pytest.raises(ShapeError, match="too small") as error:
        summarize(create_model("lenet5"), (1, 8, 8))
    assert "batch" not in str(error.value)


def test_print_gives_the_table():
    summary = summarize(TinyResNet(), (3, 16, 16))
    assert str(summary) == render_table(summary).rstrip("\n")
    assert str(summary).startswith("Layer") and "Params:" in str(summary)


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        (dict(input_size=(1.5, 16, 16)), "input_size"),
        (dict(input_size=(3, True, 16)), "input_size"),
        (dict(input_size="3,16,16"), "input_size"),
        (dict(input_size=[(3, 16, 16), (0,)]), r"input_size\[1\]"),
        (dict(input_size=(3, 16, 16), batch_size="2"), "batch_size"),
        (dict(input_size=(3, 16, 16), batch_size=2.0), "batch_size"),
        (dict(input_size=(3, 16, 16), depth="1"), "depth"),
        (dict(input_size=(3, 16, 16), mode=1), "mode"),
        (dict(input_size=(3, 16, 16), rules=[1]), "rules"),
        (dict(input_size=(3, 16, 16), measure="yes"), "measure"),
        (dict(input_size=(3, 16, 16), dtypes=["float32"]), "dtypes"),
        (dict(input_size=(3, 16, 16), dtypes=[torch.float32] * 2), "dtypes"),
        (dict(input_data=3), "input_data"),
        (dict(input_data={"x": 1}), "input_data"),
        (dict(input_data=torch.randn(1, 3, 16, 16), input_size=(3, 16, 16)), "input_size"),
        (dict(), "input_size"),
    ],
)
def test_wrong_arguments_name_the_parameter(arguments, parameter):
    model = TinyResNet()
    with model_left_as_found(model), pytest.raises(ConfigError, match=parameter) as error:
        summarize(model, **arguments)
    assert "\n" not in str(error.value)


def test_a_model_that_is_not_a_module_is_refused():
    with pytest.raises(CnnkitError, match="model"):
        summarize(3, (3, 16, 16))  # type: ignore[arg-type]


def test_the_former_keyword_still_works():
    assert summarize(TinyResNet(), input_shape=(3, 16, 16)).input_shape == (1, 3, 16, 16)
