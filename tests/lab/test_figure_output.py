"""`lab gradient-flow --out`: the suffix picks the format; titles name no seed document."""

from __future__ import annotations

import pytest

from cnnkit.cli.main import main
from cnnkit.lab.gradient_flow import gradient_flow
from cnnkit.lab.gradient_flow_plot import plot_figure


def test_gradient_flow_out_svg_writes_svg(tmp_path, capsys):
    path = tmp_path / "flow.svg"
    assert main(["lab", "gradient-flow", "--blocks", "3", "--out", str(path)]) == 0
    data = path.read_bytes()
    assert data.startswith(b"<?xml") and b"<svg" in data[:400]
    assert f"wrote {path}" in capsys.readouterr().out


def test_gradient_flow_out_with_another_suffix_is_refused_before_measuring(tmp_path, capsys):
    path = tmp_path / "flow.jpg"
    assert main(["lab", "gradient-flow", "--blocks", "3", "--out", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing measured or printed
    assert captured.err.count("\n") == 1 and "flow.jpg: a figure is written as" in captured.err
    assert not path.exists()


@pytest.mark.parametrize("seed", [0, 7])
def test_plot_titles_name_the_experiment_not_a_seed_document(seed):
    figure = plot_figure(gradient_flow(blocks=3, seed=seed))
    titles = [axes.get_title() for axes in figure.axes]
    assert titles == ["conv blocks", "linear blocks"]
