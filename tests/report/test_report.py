"""The run report without a browser: what the page says, against independent oracles."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
import types
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import ConfigError, DataError
from cnnkit.report import Predictions, build_comparison, build_report, load_run, recompute
from cnnkit.report.page import SECTIONS, _csp_hash
from cnnkit.report.run import RUN_FILES
from cnnkit.train.config import flatten_settings
from tests.report.conftest import CLASSES, XSS

pytestmark = pytest.mark.slow  # the session's two tiny training runs take a few seconds


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of <style>/<script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[tuple[str, dict[str, str | None], str]] = []
        self._open: tuple[str, dict[str, str | None]] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("style", "script"):
            self._open = (tag, dict(attrs))

    def handle_data(self, data):
        if self._open is not None:
            self.inline.append((*self._open, data))
            self._open = None


def parse(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    return parser


def read_folder(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The test split read with Pillow directly (ImageFolder order: sorted classes, files)."""
    from PIL import Image

    images, labels = [], []
    for label, folder in enumerate(sorted(p for p in root.iterdir() if p.is_dir())):
        for file in sorted(folder.iterdir()):
            images.append(np.asarray(Image.open(file)))
            labels.append(label)
    return torch.from_numpy(np.stack(images))[:, None], torch.tensor(labels)


def test_a_folder_that_is_no_run_is_a_one_line_error(tmp_path, capsys):
    from cnnkit.cli.main import main

    with pytest.raises(DataError, match="not a run folder"):
        load_run(tmp_path)
    with pytest.raises(DataError, match="no such run folder"):
        load_run(tmp_path / "absent")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnkit: error: ") and err.count("\n") == 1 and str(tmp_path) in err


def test_predictions_equal_an_independent_forward_pass(run_dir, folder_data):
    """Oracle: the checkpoint loaded with torch.load and the zoo model, images read by Pillow."""
    from cnnkit.models import create_model

    final = json.loads((run_dir / "final.json").read_text())
    assert final["val_images"] == 15 and final["evaluated_weights"] == "last"
    saved = torch.load(run_dir / "last.pt", weights_only=True)  # what final.json measured
    model = create_model(saved["model_name"], **saved["model_kwargs"])
    model.load_state_dict(saved["model"])
    images, labels = read_folder(folder_data / "test")
    x = (images.float() / 255 - saved["mean"][0]) / saved["std"][0]
    with torch.no_grad():
        logits = model.eval()(x)
    test = recompute(load_run(run_dir))
    predictions = test.predictions
    assert torch.equal(predictions.labels, labels)
    assert torch.equal(predictions.predicted, logits.argmax(1))
    torch.testing.assert_close(predictions.confidence, logits.softmax(1).max(1).values)
    # fp32 without TTA: the trainer's own evaluation counted the same
    assert predictions.top1 == pytest.approx(final["test_top1"], abs=1e-9)
    assert predictions.confusion() == final["confusion"]
    assert predictions.classes == sorted(CLASSES)


@given(
    st.integers(2, 6).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=1),
        )
    )
)
def test_class_stats_equal_scikit_learn(case):
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn (the oracle) missing")
    confusion_matrix = metrics.confusion_matrix
    precision_recall_fscore_support = metrics.precision_recall_fscore_support

    n, pairs = case
    labels = torch.tensor([p[0] for p in pairs])
    predicted = torch.tensor([p[1] for p in pairs])
    ones = torch.ones(len(pairs))
    predictions = Predictions(labels, predicted, ones, ones, ones.bool(), list("abcdef"[:n]), "")
    assert predictions.confusion() == confusion_matrix(labels, predicted, labels=range(n)).tolist()
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=range(n), zero_division=np.nan
    )
    stats = predictions.class_stats()
    np.testing.assert_allclose([s.precision for s in stats], precision, equal_nan=True)
    np.testing.assert_allclose([s.recall for s in stats], recall, equal_nan=True)
    # scikit-learn gives F1 0 where one of P, R is undefined and the other 0; we say NaN there
    ours = np.array([s.f1 for s in stats])
    defined = ~np.isnan(ours)
    np.testing.assert_allclose(ours[defined], f1[defined])
    assert [s.support for s in stats] == support.tolist()


def _parse_command(command: str) -> dict:
    """Oracle: cnnkit's own CLI parser and config resolution, as `cnnkit train` runs."""
    from cnnkit.cli.main import build_parser
    from cnnkit.cli.train import overrides_from
    from cnnkit.train.config import resolve_config

    words = shlex.split(command)
    assert words[:2] == ["cnnkit", "train"]
    args = build_parser().parse_args(words[1:])
    return resolve_config(args.recipe, args.config, overrides_from(args)).to_dict()


def test_the_command_reproduces_the_config(run_dir, second_run):
    from cnnkit.report.command import reproduce_command
    from cnnkit.train.config import TrainConfig

    unusual = TrainConfig.from_flat(
        class_weights=[1.0, 0.1 + 0.2, 3e-7],
        model_kwargs={"widths": [8, 16, 16], "depth": 3},
        schedule_epochs=None,
        patience=4,
        mean=[0.2860405969887955],
        std=[0.3530242445149226],
        data_dir="a dir/with 'quotes'",
        flip=True,
        progress=False,
    ).to_dict()
    for config in (
        json.loads((run_dir / "config.json").read_text()),
        json.loads((second_run / "config.json").read_text()),
        unusual,
    ):
        command, unknown = reproduce_command(config, "again")
        assert unknown == []
        expected = TrainConfig.from_dict(config).replace(out_dir="again").to_dict()
        assert _parse_command(command) == expected


def test_the_page_escapes_names_from_outside_and_loads_nothing(run_dir):
    html = build_report(run_dir, cam=False)
    assert XSS not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    page = parse(html)
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "img":
            assert attrs["src"].startswith("data:image/"), attrs["src"][:40]
        for name in ("href", "src", "action", "srcset"):
            value = attrs.get(name) or ""
            assert not re.match(r"(?i)\s*(https?:|//|file:|javascript:)", value), (tag, value)
    assert {attrs.get("id") for tag, attrs in page.tags if tag == "section"} == {
        section for section, _ in SECTIONS
    }


def test_the_content_security_policy_allows_only_the_inline_style_and_script(run_dir):
    html = build_report(run_dir, cam=False)
    page = parse(html)
    metas = [a for t, a in page.tags if t == "meta" and a.get("http-equiv")]
    assert metas and metas[0]["http-equiv"] == "Content-Security-Policy"
    policy = metas[0]["content"]
    assert "default-src 'none'" in policy and "img-src data:" in policy
    assert "unsafe-inline" not in policy and "http" not in policy
    executed = [text for tag, attrs, text in page.inline if tag == "style" or "type" not in attrs]
    assert len(executed) == 2
    for text in executed:
        assert _csp_hash(text) in policy
    data = [text for tag, attrs, text in page.inline if attrs.get("type") == "application/json"]
    assert XSS in json.loads(data[0])["classes"]


def test_the_page_says_what_a_run_folder_lacks(run_dir, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(run_dir, partial)
    (partial / "best.pt").unlink()
    (partial / "metrics.csv").unlink()
    final = json.loads((partial / "final.json").read_text())
    for key in ("classes", "torch", "python", "threads", "evaluated_weights", "confusion"):
        final.pop(key)  # an older run's final.json
    (partial / "final.json").write_text(json.dumps(final))
    (partial / "environment.json").unlink(missing_ok=True)  # older runs did not write it
    html = build_report(partial, cam=False)
    assert "best.pt is missing" in html and "metrics.csv is missing: no curves" in html
    assert "not recorded by the run" in html
    assert 'data-key="test_top1"' in html

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run_dir / "config.json", bare)
    html = build_report(bare, cam=False)
    assert "final.json is missing" in html and "test predictions could not be recomputed" in html
    assert "cnnkit train " in html  # the command is still known


def test_a_run_without_validation_is_said_and_evaluated_from_best(second_run):
    run = load_run(second_run)
    assert run.evaluated_checkpoint() == (second_run / "best.pt", "model")
    assert "no validation split: the curves show training only" in run.missing
    html = build_report(second_run, cam=False)
    assert "no validation split" in html


def test_the_comparison_shows_only_the_settings_that_differ(run_dir, second_run, tmp_path):
    from cnnkit.cli.main import main

    first = flatten_settings(json.loads((run_dir / "config.json").read_text()))
    second = flatten_settings(json.loads((second_run / "config.json").read_text()))
    differing = {k for k in first if k != "out_dir" and first[k] != second.get(k)}
    assert {"lr", "val_size"} <= differing
    html = build_comparison([run_dir, second_run])
    table = html[html.index('id="config-diff-table"') :]
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th>', table[: table.index("</table>")])
    assert set(rows) == differing
    with pytest.raises(ConfigError, match="--out"):
        from cnnkit.report import write_report

        write_report([run_dir, second_run])
    out = tmp_path / "compare.html"
    assert main(["report", str(run_dir), str(second_run), "--out", str(out)]) == 0
    assert out.read_text().startswith("<!doctype html>")


def test_cam_section_without_and_with_the_explain_capability(run_dir, monkeypatch):
    from PIL import Image

    from cnnkit.report import cam as cam_module

    test = recompute(load_run(run_dir))
    if cam_module.find_cam() is None:
        assert cam_module.cam_section(test).message == "CAM overlays need cnnkit.explain"
    calls = []

    class Result:
        def __init__(self, batch):
            self.batch = batch

        def upsampled(self, size):
            return torch.linspace(0, 1, size[0] * size[1]).view(1, *size).repeat(self.batch, 1, 1)

    def fake_cam(model, images, method="gradcam", layer=None, targets=None):
        calls.append((model.training, images.shape, method, targets))
        return Result(len(images))

    stub = types.ModuleType("cnnkit.explain")
    stub.cam = fake_cam
    monkeypatch.setitem(sys.modules, "cnnkit.explain", stub)
    section = cam_module.cam_section(test, correct=2, wrong=2)
    hits = test.predictions.predicted == test.predictions.labels
    expected = min(2, int(hits.sum())) + min(2, int((~hits).sum()))
    assert len(section.tiles) == expected and section.message is None
    training, shape, method, targets = calls[0]
    assert not training and method == "gradcam" and shape[1:] == (1, 12, 12)
    indices = [tile.index for tile in section.tiles]
    assert targets == test.predictions.predicted[indices].tolist()
    import base64
    import io

    png = base64.b64decode(section.tiles[0].uri.split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (12, 12)


def test_cli_writes_report_html_into_the_run(run_dir, capsys, tmp_path):
    from cnnkit.cli.main import main

    assert main(["report", str(run_dir)]) == 0
    assert capsys.readouterr().out.startswith(f"report: {run_dir / 'report.html'} (")
    assert (run_dir / "report.html").read_text().count("<section") == len(SECTIONS)
    assert main(["report", str(run_dir), "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith(f"report: {tmp_path / 'report.html'} (")


def test_big_images_are_shrunk_for_the_page():
    import base64
    import io

    from PIL import Image

    from cnnkit.report.figures import image_uri

    picture = torch.randint(0, 256, (3, 300, 200), dtype=torch.uint8)
    png = base64.b64decode(image_uri(picture).split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (75, 112)  # width, height: aspect kept
    small = torch.randint(0, 256, (1, 12, 12), dtype=torch.uint8)
    decoded = Image.open(io.BytesIO(base64.b64decode(image_uri(small).split(",", 1)[1])))
    assert np.array_equal(np.asarray(decoded), small[0].numpy())  # lossless, as stored


def test_a_checkpoint_without_what_the_report_needs_is_said(run_dir, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    for name in ("best.pt", "last.pt"):
        saved = torch.load(old / name, weights_only=True)
        del saved["image_shape"]
        torch.save(saved, old / name)
    html = build_report(old, cam=False)
    assert "checkpoint lacks &#39;image_shape&#39;" in html
    assert 'data-key="test_top1"' in html


@settings(max_examples=5, deadline=None)
@given(
    st.fixed_dictionaries(
        {name: st.sampled_from(["kept", "removed", "garbled"]) for name in RUN_FILES}
    ).filter(lambda states: any(state != "removed" for state in states.values()))
)
def test_any_damaged_run_folder_gets_a_whole_page(run_dir, tmp_path_factory, states):
    """Each file kept, removed or overwritten with garbage: the page still has every section
    and names each file that is gone."""
    damaged = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(run_dir, damaged)
    for name, state in states.items():
        if state == "removed":
            (damaged / name).unlink()
        elif state == "garbled":
            (damaged / name).write_bytes(b"\x00\xffnot what it should be{")
    html = build_report(damaged, cam=False)
    assert html.count("<section") == len(SECTIONS)
    for name in ("config.json", "final.json", "metrics.csv", "best.pt"):
        if states[name] == "removed":
            assert f"{name} is missing" in html, name
    for name in ("config.json", "final.json"):
        if states[name] == "garbled":
            assert f"{name} is unreadable" in html, name


def test_the_environment_section_shows_what_environment_json_recorded(run_dir):
    import html as markup

    env = json.loads((run_dir / "environment.json").read_text())
    page = build_report(run_dir, cam=False)
    assert markup.escape(env["cpu_model"]) in page
    assert markup.escape(" ".join(env["command"])) in page
    assert env["torch"] in page and "not recorded by the run" not in page.split("Environment")[-1]
