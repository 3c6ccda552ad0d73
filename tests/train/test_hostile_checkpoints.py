"""A checkpoint or config file never selects code: hostile files import and call nothing.

Each hostile file is a real run's checkpoint (plain dicts, strings and tensors, which
``torch.load(weights_only=True)`` loads happily) whose model names code: ``os:system``,
``subprocess:run``, ``builtins:exec``, ``torch.hub:load`` with a local ``hubconf.py``,
``importlib:import_module``, a module of the attacker's, or a zoo model with a keyword argument
that is itself a ``module:callable`` path. Every payload would create a marker file (and the
modules it would import are watched in ``sys.modules``); each path a user can take (the Python
API and ``cnnkit eval``, ``cnnkit train --resume``, ``cnnkit train --config``) must refuse in
one line, leave the marker absent, import nothing and change nothing on disk.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from pathlib import Path

import pytest
import torch

from cnnkit.cli.main import main
from cnnkit.errors import CnnkitError
from cnnkit.train import evaluate, fit
from tests.train.tiny import quadrant_dataset

TRAIN = quadrant_dataset(96, seed=1)
TEST = quadrant_dataset(32, seed=2)


class Trap:
    """A marker file every payload would create, and the module names it would import."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.marker = root / "PWNED"
        self.module = f"cnnkit_payload_{uuid.uuid4().hex[:8]}"
        (root / f"{self.module}.py").write_text(
            f"import pathlib\npathlib.Path({str(self.marker)!r}).write_text('imported')\n"
            "def build(**kwargs):\n"
            f"    pathlib.Path({str(self.marker)!r}).write_text('called')\n"
            "    import torch\n"
            "    return torch.nn.Linear(1, 1)\n"
        )
        self.hub = root / "hub"
        self.hub.mkdir()
        (self.hub / "hubconf.py").write_text(
            f"import pathlib\npathlib.Path({str(self.marker)!r}).write_text('hubconf')\n"
            "def entry(**kwargs):\n    return None\n"
        )

    def specs(self) -> dict[str, tuple[str, dict]]:
        """name -> (model spec, model kwargs) of each hostile checkpoint."""
        marker = str(self.marker)
        return {
            "os.system": ("os:system", {"command": f"touch {marker}"}),
            "subprocess.run": ("subprocess:run", {"args": ["touch", marker]}),
            "builtins.exec": ("builtins:exec", {"source": f"open({marker!r}, 'w').close()"}),
            "torch.hub.load": (
                "torch.hub:load",
                {"repo_or_dir": str(self.hub), "model": "entry", "source": "local"},
            ),
            "importlib.import_module": ("importlib:import_module", {"name": self.module}),
            "attacker module": (f"{self.module}:build", {}),
            "callable kwarg": ("softmax_regression", {"factory": f"{self.module}:build"}),
        }

    def assert_untouched(self) -> None:
        assert not self.marker.exists(), self.marker.read_text()
        assert self.module not in sys.modules
        assert "hubconf" not in sys.modules


@pytest.fixture
def trap(tmp_path, monkeypatch) -> Trap:
    monkeypatch.syspath_prepend(str(tmp_path))  # the attacker's module would be importable
    return Trap(tmp_path)


def hostile_run(real_run: Path, folder: Path, spec: str, kwargs: dict) -> Path:
    """A copy of the real run folder whose checkpoints name ``spec`` with ``kwargs``."""
    folder.mkdir()
    for name in ("last.pt", "best.pt"):
        saved = torch.load(real_run / name, weights_only=True)
        saved["model_name"] = spec
        saved["model_kwargs"] = kwargs
        # epochs 5: the run is not complete, so a resume would go on to build the model
        saved["config"] = {**saved["config"], "model": spec, "model_kwargs": kwargs, "epochs": 5}
        torch.save(saved, folder / name)
    config = json.loads((real_run / "config.json").read_text())
    config.update(model=spec, model_kwargs=kwargs, epochs=5)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_line_refusal(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("cnnkit: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "internal error" not in err
    return err


NAMES = [
    "os.system",
    "subprocess.run",
    "builtins.exec",
    "torch.hub.load",
    "importlib.import_module",
    "attacker module",
    "callable kwarg",
]


def _expect(name: str, spec: str, message: str) -> None:
    if name == "callable kwarg":  # a zoo model: the kwarg is refused as unknown, never resolved
        assert "no keyword argument 'factory'" in message or "factory" in message, message
    else:
        assert f"--model {spec}" in message and "name it yourself" in message, message


@pytest.mark.parametrize("name", NAMES)
def test_hostile_checkpoints_run_nothing_through_the_python_api(name, real_run, trap, tmp_path):
    spec, kwargs = trap.specs()[name]
    run = hostile_run(real_run, tmp_path / "run", spec, kwargs)
    before = digest(run)
    with pytest.raises(CnnkitError) as from_eval:
        evaluate(run, device="cpu")
    with pytest.raises(CnnkitError) as from_resume:
        fit(resume=run, train_set=TRAIN, test_set=TEST)
    for caught in (from_eval, from_resume):
        assert "\n" not in str(caught.value)
        _expect(name, spec, str(caught.value))
    trap.assert_untouched()
    assert digest(run) == before


@pytest.mark.parametrize("name", NAMES)
def test_hostile_checkpoints_run_nothing_through_the_cli(name, real_run, trap, tmp_path, capsys):
    spec, kwargs = trap.specs()[name]
    run = hostile_run(real_run, tmp_path / "run", spec, kwargs)
    before = digest(run)
    commands = [
        ["eval", str(run)],
        ["eval", str(run / "last.pt")],
        ["train", "--resume", str(run)],
        ["train", "--config", str(run / "config.json"), "--out", str(tmp_path / "new")],
    ]
    if name != "callable kwarg":  # a dry run builds no model: a zoo name's kwargs just print
        commands.append(["train", "--resume", str(run), "--dry-run"])
        commands.append(["train", "--config", str(run / "config.json"), "--dry-run"])
    for argv in commands:
        _expect(name, spec, one_line_refusal(capsys, argv))
    trap.assert_untouched()
    assert digest(run) == before
    assert not (tmp_path / "new").exists()


def test_a_config_naming_other_code_than_the_checkpoint_is_refused(real_run, trap, tmp_path):
    run = hostile_run(real_run, tmp_path / "run", "softmax_regression", {})
    saved = torch.load(run / "last.pt", weights_only=True)
    saved["config"]["model"] = "os:system"  # model_name stays a zoo name
    torch.save(saved, run / "last.pt")
    with pytest.raises(CnnkitError, match=r"config' names model 'os:system', 'model_name'"):
        fit(resume=run, train_set=TRAIN, test_set=TEST)
    trap.assert_untouched()


@pytest.mark.parametrize(
    "kwargs",
    [{"factory": torch.zeros(2)}, {"nested": {"deep": [1, torch.ones(1)]}}, {1: "int key"}],
)
def test_model_kwargs_that_are_not_plain_json_are_refused(real_run, tmp_path, kwargs):
    run = hostile_run(real_run, tmp_path / "run", "softmax_regression", {})
    saved = torch.load(run / "best.pt", weights_only=True)
    saved["model_kwargs"] = kwargs
    torch.save(saved, run / "best.pt")
    with pytest.raises(CnnkitError, match="model_kwargs' must be a dict of plain JSON values"):
        evaluate(run, device="cpu")


def test_naming_the_code_yourself_allows_it(real_run, trap, tmp_path, capsys):
    """The opt-in: ``--model SPEC`` (or ``model=``) builds the recorded callable."""
    run = hostile_run(real_run, tmp_path / "run", f"{trap.module}:build", {})
    code = main(["eval", str(run), "--model", f"{trap.module}:build", "--device", "cpu"])
    # the attacker's factory returns a Linear(1, 1): its weights then do not fit the checkpoint
    assert code == 2 and "unexpected key" in capsys.readouterr().err
    assert trap.marker.read_text() == "called"  # the user asked for it, so it ran


@pytest.mark.parametrize("dataset", ["os:system", "importlib:import_module", "{module}:build"])
def test_a_dataset_name_that_names_code_goes_through_the_registry_only(
    real_run, trap, tmp_path, capsys, dataset
):
    dataset = dataset.format(module=trap.module)
    kwargs = torch.load(real_run / "last.pt", weights_only=True)["model_kwargs"]
    run = hostile_run(real_run, tmp_path / "run", "softmax_regression", kwargs)
    for name in ("last.pt", "best.pt"):
        saved = torch.load(run / name, weights_only=True)
        saved["config"]["dataset"] = dataset
        torch.save(saved, run / name)
    before = digest(run)
    err = one_line_refusal(capsys, ["eval", str(run)])
    assert f"unknown dataset {dataset!r}" in err
    err = one_line_refusal(capsys, ["train", "--resume", str(run)])
    assert f"unknown dataset {dataset!r}" in err
    trap.assert_untouched()
    assert digest(run) == before
