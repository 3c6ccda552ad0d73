"""The report in a real browser: headless Chromium (Debian's chromium + chromium-driver, selenium).

Each page loads from file:// with no console error, no request but data: URIs, no CSP violation,
every image decoded, every section there, the headline equal to final.json and the confusion
counts equal to a recount; a class named ``<img src=x onerror=alert(1)>`` shows as text and runs
nothing. Screenshots go to the test's tmp folder (printed) for a human look.
"""

from __future__ import annotations

import json

import pytest

from cnnkit.report import build_comparison, build_report
from cnnkit.report.page import COMPARISON_SECTIONS, SECTIONS
from tests.report.browser import start_chromium, visit
from tests.report.conftest import XSS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def driver():
    driver = start_chromium()
    yield driver
    driver.quit()


def assert_clean(page, driver):
    from selenium.common.exceptions import NoAlertPresentException

    assert [e for e in page.console if e["level"] in ("SEVERE", "WARNING")] == []
    assert page.outside_requests == []
    assert page.events == []  # no CSP violation, no dialog
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018
    images = driver.execute_script(
        "return Array.from(document.images)"
        ".map(i => [i.complete, i.naturalWidth, i.src.slice(0, 15)])"
    )
    assert images and all(done and width > 0 for done, width, _ in images), images


@pytest.fixture(scope="module")
def run_page(run_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("pages") / "report.html"
    path.write_text(build_report(run_dir), encoding="utf-8")
    return path


def test_run_page_renders_offline_with_every_section(driver, run_page, run_dir, tmp_path):
    page = visit(driver, run_page)
    assert_clean(page, driver)
    ids = driver.execute_script(
        "return Array.from(document.querySelectorAll('section')).map(s => s.id)"
    )
    assert ids == [section for section, _ in SECTIONS]
    final = json.loads((run_dir / "final.json").read_text())
    shown = driver.execute_script(
        "return Array.from(document.querySelectorAll('dd[data-key]'))"
        ".map(d => [d.dataset.key, d.dataset.value, d.textContent])"
    )
    values = {key: (json.loads(raw), text) for key, raw, text in shown}
    for key in ("test_top1", "test_top5", "test_loss", "wall_seconds", "epochs", "stopped"):
        assert values[key][0] == final[key], key
    assert values["test_top1"][1] == f"{final['test_top1']:.2f}%"
    assert values["test_top5"][1] == f"{final['test_top5']:.2f}%"
    assert values["stopped"][1] == final["stopped"]
    screenshot = tmp_path / "run-page.png"
    driver.save_screenshot(str(screenshot))
    print(f"screenshot: {screenshot}")


def test_confusion_counts_equal_a_recount_of_the_predictions(driver, run_page, run_dir):
    visit(driver, run_page)
    cells = driver.execute_script(
        "return Array.from(document.querySelectorAll('#confusion-matrix td'))"
        ".map(c => [+c.dataset.true, +c.dataset.predicted, +c.dataset.count, c.textContent.trim()])"
    )
    data = json.loads(
        driver.execute_script("return document.getElementById('predictions-data').textContent")
    )
    size = len(data["classes"])
    recount = [[0] * size for _ in range(size)]
    for true, predicted in zip(data["labels"], data["predicted"], strict=True):
        recount[true][predicted] += 1
    assert len(cells) == size * size
    for true, predicted, count, text in cells:
        assert count == recount[true][predicted] == int(text)
    # fp32 without TTA, so the trainer's own matrix agrees too
    assert recount == json.loads((run_dir / "final.json").read_text())["confusion"]
    # each off-diagonal count links to its images
    for true, predicted, count, _ in cells:
        if true != predicted and count:
            thumbs = driver.execute_script(
                f"return document.querySelectorAll('#cell-{true}-{predicted} img').length"
            )
            assert thumbs == min(count, 3)


def test_sorting_script_runs_and_sorts(driver, run_page):
    visit(driver, run_page)
    header = driver.find_element("css selector", "#per-class-table thead th:nth-child(5)")
    header.click()
    support = driver.execute_script(
        "return Array.from(document.querySelectorAll('#per-class-table tbody tr'))"
        ".map(r => +r.cells[4].dataset.sort)"
    )
    assert support == sorted(support)
    assert header.get_attribute("data-dir") == "asc"


def test_a_hostile_class_name_is_text_and_runs_nothing(driver, run_page):
    page = visit(driver, run_page)
    assert page.events == []
    assert driver.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    headers = driver.execute_script(
        "return Array.from(document.querySelectorAll('#confusion-matrix tbody th'))"
        ".map(t => t.textContent)"
    )
    assert XSS in headers
    # the page stays whole: the sections after the names are still there and parsed as such
    assert driver.execute_script("return document.querySelectorAll('section').length") == len(
        SECTIONS
    )
    assert driver.execute_script("return document.body.lastElementChild.tagName") == "SCRIPT"


def test_comparison_page_renders_offline(driver, run_dir, second_run, tmp_path):
    path = tmp_path / "compare.html"
    path.write_text(build_comparison([run_dir, second_run]), encoding="utf-8")
    page = visit(driver, path)
    assert_clean(page, driver)
    ids = driver.execute_script(
        "return Array.from(document.querySelectorAll('section')).map(s => s.id)"
    )
    assert ids == [section for section, _ in COMPARISON_SECTIONS]
    top1 = driver.execute_script(
        "return Array.from(document.querySelectorAll('td[data-key=\"test_top1\"]'))"
        ".map(c => JSON.parse(c.dataset.value))"
    )
    finals = [
        json.loads((d / "final.json").read_text())["test_top1"] for d in (run_dir, second_run)
    ]
    assert top1 == finals
    driver.save_screenshot(str(tmp_path / "compare.png"))
    print(f"screenshot: {tmp_path / 'compare.png'}")


def test_curve_switching_shows_one_curve_or_all(driver, run_page):
    visit(driver, run_page)
    buttons = driver.find_elements("css selector", "#curves .switch button")
    assert [b.text for b in buttons] == [
        "all",
        "loss",
        "top-1 accuracy",
        "learning rate (end of epoch)",
    ]
    shown = (
        "return Array.from(document.querySelectorAll('#curves figure'))"
        ".map(f => f.offsetParent !== null)"
    )
    assert driver.execute_script(shown) == [True, True, True]
    buttons[2].click()
    assert driver.execute_script(shown) == [False, True, False]
    assert buttons[2].get_attribute("aria-pressed") == "true"
    buttons[0].click()
    assert driver.execute_script(shown) == [True, True, True]


def test_the_fine_tuning_table_shows_final_jsons_rows(driver, fine_tuned_run, tmp_path):
    path = tmp_path / "fine-tuned.html"
    path.write_text(build_report(fine_tuned_run, cam=False), encoding="utf-8")
    page = visit(driver, path)
    assert_clean(page, driver)
    shown = driver.execute_script(
        "const t = document.getElementById('fine-tuning-table');"
        "return [t.getBoundingClientRect().height, Array.from(t.tBodies[0].rows)"
        ".map(r => [r.className, r.dataset.lr, ...Array.from(r.cells).map(c => c.textContent)])]"
    )
    height, rows = shown
    assert height > 0
    record = json.loads((fine_tuned_run / "final.json").read_text())["transfer"]
    assert len(rows) == len(record["rows"])
    for (kind, lr, stage, params, *_), row in zip(rows, record["rows"], strict=True):
        assert stage == row["stage"] and params == f"{row['parameters']:,}"
        assert json.loads(lr) == row["lr"]
        assert kind == ("frozen" if row["frozen"] else "trains")
    assert any(kind == "frozen" for kind, *_ in rows) and any(k == "trains" for k, *_ in rows)
