import subprocess
import sys

from cnnkit.cli.main import main


def test_unknown_command_is_one_line_exit_2(capsys):
    try:
        main(["no-such-command"])
    except SystemExit as exc:
        assert exc.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "invalid choice" in err


def test_python_dash_m_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "cnnkit", "--version"], capture_output=True, text=True, check=True
    )
    assert proc.stdout.startswith("cnnkit ")


def test_shape_flags_reject_empty_parts():
    import pytest

    from cnnkit.cli._common import parse_ints
    from cnnkit.errors import ConfigError

    assert parse_ints("3,224,224", "--input") == (3, 224, 224)
    assert parse_ints("3x32x32", "--input") == (3, 32, 32)
    for text in ("1,x,28", "3,,28", "3,28,", "a,2", "0,2"):
        with pytest.raises(ConfigError, match="--input"):
            parse_ints(text, "--input")
