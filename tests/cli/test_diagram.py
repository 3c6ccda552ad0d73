"""``cnnkit diagram``: ASCII and Mermaid drawings of the captured graph."""

from __future__ import annotations

from cnnkit.cli.main import main

SPEC = "tests.analysis.models:tiny_resnet"


def test_ascii_shows_the_residual_branches(capsys):
    assert main(["diagram", SPEC, "--input", "3,16,16"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["●", "input", "1x3x16x16"]
    assert out.count("├─╮") == 2 and out.count("├─┘") == 2
    assert "layer2.add (+)  1x16x8x8" in out


def test_mermaid_at_depth_1_is_a_chain_of_modules(capsys):
    assert main(["diagram", SPEC, "--input", "3,16,16", "--format", "mermaid", "--depth", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "graph LR"
    assert [line.strip() for line in lines if "-->" in line] == [
        "input --> n0", "n0 --> n1", "n1 --> n2", "n2 --> n3", "n3 --> n4", "n4 --> n5",
    ]  # fmt: skip
    assert '  n1["layer1<br/>BasicBlock<br/>1x8x16x16"]' in lines


def test_unknown_format_is_a_usage_error(capsys):
    try:
        main(["diagram", SPEC, "--format", "png"])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "invalid choice" in capsys.readouterr().err
