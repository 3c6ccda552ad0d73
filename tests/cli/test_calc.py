"""``cnnkit calc``: each problem prints its substituted steps; bad flags are one line, exit 2."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from cnnkit.cli.main import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["calc", *argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            "conv --input-size 224 --kernel-size 7 --stride 2 --padding 3 --in-channels 3 "
            "--out-channels 64",
            [
                "H, W: floor((224 + 2*3 - 7)/2) + 1 = floor(223/2) + 1 = 112",
                "params = C_out C_in prod(k) + C_out = 64*3*7*7 + 64 = 9,472",
                "=> output_size = 112 x 112, params = 9,472",
            ],
        ),
        (
            "conv --input-size 32,16 --kernel-size 3 --padding same --dilation 2,1",
            ["k_eff = d(k - 1) + 1 = 2*(3 - 1) + 1 = 5   [H]", "=> output_size = 32 x 16"],
        ),
        (
            "conv --input-size 9 --kernel-size 4 --padding 1:2 --ndim 1",
            ["L: floor((9 + 1 + 2 - 4)/1) + 1 = floor(8/1) + 1 = 9"],
        ),
        (
            "pool --input-size 112 --kernel-size 3 --stride 2 --ceil-mode",
            ["ceil((112 + 2*0 - 3)/2) + 1 = ceil(109/2) + 1 = 56", "=> output_size = 56 x 56"],
        ),
        (
            "pool --input-size 6 --kernel-size 2",
            ["stride defaults to the kernel size", "floor((6 + 2*0 - 2)/2) + 1"],
        ),
        (
            "transpose --input-size 8 --kernel-size 4 --stride 2 --padding 1",
            ["H, W: (8 - 1)*2 - 2*1 + 1*(4 - 1) + 0 + 1 = 16"],
        ),
        (
            "rf --layers k3,k3,poolk2s2,k3",
            ["layer 4 (k3): j = 2*1 = 2; r = 6 + (3 - 1)*2 = 10", "=> rf = 3, 5, 6, 10"],
        ),
        (
            "im2col --batch-size 32 --in-channels 64 --kernel-size 3 --input-size 224 "
            "--padding same --dtype float16",
            ["32*64*3*3*224*224 = 924,844,032", "1,849,688,064 = 1.85 GB"],
        ),
        (
            "params --in-channels 64 --out-channels 128 --kernel-size 3 --groups 4 --no-bias",
            ["params = C_out (C_in/g) prod(k) = 128*(64/4)*3*3 = 18,432"],
        ),
        (
            "macs --in-channels 64 --out-channels 128 --kernel-size 3 --output-size 56",
            ["1*56*56*128*64*3*3 = 231,211,008", "FLOPs = 2 x MACs = 462,422,016"],
        ),
        (
            "compare --in-channels 64 --out-channels 128 --kernel-size 3 --groups 8 --depth 3",
            ["= 8,960 (12.13% of standard)", "27 vs 7*7 = 49"],
        ),
        ("seed", ["(seed 000 §6 problem 1)", "=> rf = 5, 6, 14, 16", "924,844,032"]),
    ],
)
def test_each_problem_prints_its_substituted_steps(capsys, argv, expected):
    code, out, err = run(capsys, *argv.split())
    assert (code, err) == (0, "")
    for line in expected:
        assert line in out


def test_printed_numbers_agree_with_pytorch(capsys):
    argv = "conv --input-size 28,20 --kernel-size 5,3 --stride 2 --padding 2,0"
    _, out, _ = run(
        capsys, *argv.split(), "--in-channels", "3", "--out-channels", "8", "--format", "json"
    )
    result = json.loads(out)["result"]
    conv = nn.Conv2d(3, 8, (5, 3), stride=2, padding=(2, 0))
    assert result["output_size"] == list(conv(torch.zeros(1, 3, 28, 20)).shape[2:])
    assert result["params"] == sum(p.numel() for p in conv.parameters())


def test_json_output(capsys):
    code, out, _ = run(capsys, "rf", "--layers", "k3,tconvk4s2p1", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["result"]["rf"] == [3, 4.5] and data["result"]["jump"] == [1, 0.5]
    code, out, _ = run(capsys, "seed", "--format", "json")
    assert [p["source"] for p in json.loads(out)][:2] == ["000 §6 problem 1", "000 §6 problem 2"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ("conv --input-size 2 --kernel-size 3", "output size would be 0 on axis H"),
        ("conv --input-size 8 --kernel-size 3 --stride 0", "--stride: must be >= 1, got 0"),
        ("conv --input-size 8 --kernel-size x", "--kernel-size: expected one integer"),
        ("conv --input-size 8 --kernel-size 3,3,3 --stride 1,2", "--stride: expected 1 or 3"),
        ("conv --input-size 9 --kernel-size 3 --padding same --stride 2", "--padding='same'"),
        (
            "conv --input-size 8 --kernel-size 3 --in-channels 4 --out-channels 6 --groups 4",
            "--out-channels=6 is not divisible by --groups=4",
        ),
        ("pool --input-size 8 --kernel-size 3 --padding 2", "--padding must be at most half"),
        ("transpose --input-size 3 --kernel-size 3 --stride 2 --output-padding 2", "smaller"),
        ("rf --layers k3,q2", "--layers: layer 'q2'"),
        (
            "im2col --batch-size 1 --in-channels 1 --kernel-size 3 --input-size 5 --dtype fp7",
            "--dtype: unknown dtype 'fp7'",
        ),
        ("", "choose a problem"),
        ("conv --kernel-size 3", "required: --input-size"),
        ("conv --input-size 8 --kernel-size 3 --ndim 4", "--ndim"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(capsys, argv, words):
    code, out, err = run(capsys, *argv.split())
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err
