"""Equivariance lab: circular conv is exact, zero padding breaks only the border, stride 2 and
pooling keep only even shifts. Errors are recomputed with torch.nn.functional as the oracle."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import ConfigError
from cnnkit.lab import equivariance

shifts = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), min_size=1, max_size=3)


def _rows(result, operation):
    return [row for row in result.rows if row.operation == operation]


@settings(max_examples=15)
@given(shift_list=shifts, seed=st.integers(0, 100))
def test_each_operation_is_equivariant_exactly_when_theory_says(shift_list, seed):
    result = equivariance(size=8, shifts=shift_list, seed=seed)
    for row in _rows(result, "conv 3x3, circular padding"):
        assert row.equivariant and row.max_error < 1e-12
    for row in _rows(result, "conv 3x3, zero padding"):
        assert row.error_away_from_border < 1e-12  # broken only where the padding moved
        assert row.equivariant == (row.shift == (0, 0))
    for name in ("conv 3x3 stride 2, circular", "max-pool 2x2 stride 2"):
        for row in _rows(result, name):
            even = row.shift[0] % 2 == 0 and row.shift[1] % 2 == 0
            assert row.equivariant == even
            if even:
                assert row.output_shift == (row.shift[0] // 2, row.shift[1] // 2)


def test_zero_padding_error_matches_torch():
    result = equivariance(size=16, shifts=[(2, 1)], seed=3)
    row = _rows(result, "conv 3x3, zero padding")[0]
    generator = torch.Generator().manual_seed(3)  # the lab's documented draws
    x = torch.randn(1, 3, 16, 16, generator=generator, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, generator=generator, dtype=torch.float64)

    def shift(t, d):  # 002: (T_d X)[i, j] = X[i + d1, j + d2], circularly
        return torch.roll(t, shifts=(-d[0], -d[1]), dims=(-2, -1))

    reference = F.conv2d(x, weight, padding=1)
    difference = (F.conv2d(shift(x, (2, 1)), weight, padding=1) - shift(reference, (2, 1))).abs()
    assert row.max_error == pytest.approx(float(difference.max() / reference.abs().max()))
    differing = (difference / reference.abs().max() > 1e-12).any(dim=1).double().mean()
    assert row.differing == pytest.approx(float(differing))


def test_bad_arguments():
    with pytest.raises(ConfigError, match="size must be an even integer >= 4"):
        equivariance(size=7)
    with pytest.raises(ConfigError, match=r"a shift must be two integers in \[0, 8\)"):
        equivariance(size=8, shifts=[(8, 0)])
