"""The edge examples of 003 and 004 against torch.nn.functional.conv2d and 004's printed output."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnkit.lab import edges
from cnnkit.lab.render import render_text

# 004 section 2.2 prints this 6x7 output for its 6x8 image and the kernel [1, -1].
SEED004_PRINTED = [[0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]] * 6


def _torch_corr(image: list[list[float]], kernel: list[list[float]]) -> torch.Tensor:
    return F.conv2d(torch.tensor(image)[None, None], torch.tensor(kernel)[None, None])[0, 0]


def test_seed003_horizontal_edge_gives_minus_three_in_the_middle_rows():
    example = edges().examples[0]
    image = torch.zeros(6, 6)
    image[:3] = 1.0  # 003: test_img[:3, :] = 1.0
    assert example.image == image.tolist()
    assert example.kernel == [[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    expected = _torch_corr(example.image, example.kernel)
    assert example.output == expected.tolist()
    # The seed's "±3 in the middle rows": rows 1 and 2 are -3, rows 0 and 3 are 0.
    assert expected[:, 0].tolist() == [0.0, -3.0, -3.0, 0.0]
    assert example.finding == "row 1: -3, row 2: -3; 0 in the other 2 rows"


def test_seed004_vertical_edges_match_the_printed_output():
    example = edges().examples[1]
    assert example.output == SEED004_PRINTED
    assert example.output == _torch_corr(example.image, example.kernel).tolist()
    assert example.finding == "column 1: 1, column 5: -1; 0 in the other 5 columns"


def test_text_prints_tensors_as_the_seeds_do():
    text = render_text(edges())
    assert "tensor([[ 0.,  1.,  0.,  0.,  0., -1.,  0.]," in text
    assert "[-3., -3., -3., -3.]," in text
    assert "-0." not in text
    assert text.count("same as torch.nn.functional.conv2d: yes") == 2
