"""Headless Debian Chromium driven by selenium, offline: the page's console, network requests,
CSP violations and dialogs are recorded for the tests to assert on."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Runs in every page before its own scripts (CDP bypasses the page's CSP): records CSP
# violations and any dialog the page tries to open.
RECORDER = """
window.__cnnkit_events = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cnnkit_events.push(['csp', e.violatedDirective, e.blockedURI]);
});
['alert', 'confirm', 'prompt', 'print'].forEach(function (name) {
  window[name] = function (message) { window.__cnnkit_events.push([name, String(message)]); };
});
"""


def start_chromium() -> Any:
    """A headless Chromium (skips the test with the reason when it cannot start)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium)")
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not (Path(binary).exists() or shutil.which(Path(binary).name)):
            pytest.skip(f"{binary} not found: apt-get install chromium chromium-driver")
    # selenium's usage statistics and driver manager would try the network
    os.environ["SE_AVOID_STATS"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1600",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception as exc:  # a broken install: say why, do not fail the suite
        pytest.skip(f"headless Chromium did not start: {str(exc).splitlines()[0]}")
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})
    return driver


@dataclass
class Visit:
    """What happened while a page loaded."""

    url: str
    console: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    events: list[list[str]] = field(default_factory=list)
    load_ms: float = 0.0

    @property
    def outside_requests(self) -> list[str]:
        """Requests for anything but the page itself and data: URIs."""
        return [u for u in self.requests if u != self.url and not u.startswith("data:")]


def visit(driver: Any, path: Path) -> Visit:
    """Open ``path`` from file:// and collect its console, requests and recorded events."""
    driver.get_log("browser")  # drop what earlier pages left
    driver.get_log("performance")
    url = path.resolve().as_uri()
    driver.get(url)
    driver.execute_async_script(
        "var done = arguments[0];"
        "if (document.readyState === 'complete') { done(); }"
        "else { window.addEventListener('load', function () { done(); }); }"
    )
    result = Visit(url)
    result.console = driver.get_log("browser")
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            result.requests.append(message["params"]["request"]["url"])
    result.events = driver.execute_script("return window.__cnnkit_events")
    result.load_ms = driver.execute_script(
        "return performance.getEntriesByType('navigation')[0].loadEventEnd"
    )
    return result
