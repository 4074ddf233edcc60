"""The HTML report in a real browser (issue 25, item 1): headless Chromium (Debian's chromium
and chromium-driver, through selenium) loads the page at 1280 px and the test asserts that
every image loaded, no heading, paragraph or table cell overflows its box, the page does not
scroll sideways, and the answer (verdicts and plots) comes before the tables.

Skipped, with the reason, where selenium, chromium or chromedriver is missing; .ci/run installs
them and then requires the test to run ($ETAMETER_REQUIRE_BROWSER). ``ETAMETER_SCREENSHOT_DIR=folder`` also saves a full-page screenshot there."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from profiler.store import Store
from reports.html import html_report
from tests.test_plots_readable import _variants_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
#: Flags for a closed network and a clean, throwaway profile (without them Chromium stalls or
#: fails on this kind of machine: network services, component updates, sync, first-run UI).
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900")

CHECKS = """
const doc = document.documentElement;
const boxes = [...document.querySelectorAll('h1, h2, h3, p, li, th, td')];
const order = (sel) => { const e = document.querySelector(sel); return e ? [...document.querySelectorAll('*')].indexOf(e) : -1; };
return {
  width: doc.clientWidth, scrollWidth: doc.scrollWidth,
  images: [...document.images].map(i => ({alt: i.alt, complete: i.complete, naturalWidth: i.naturalWidth,
                                          right: i.getBoundingClientRect().right})),
  overflowing: boxes.filter(e => e.scrollWidth > e.clientWidth)
                    .map(e => e.tagName + ' ' + e.scrollWidth + '>' + e.clientWidth + ': ' + e.textContent.slice(0, 80)),
  firstVerdicts: order('ul.verdicts'), firstImage: order('img'), firstTable: order('table'),
};
"""


def _require_browser():
    """selenium's webdriver, or a skip naming what is missing (a failure where CI installed
    Chromium and set ``$ETAMETER_REQUIRE_BROWSER``)."""
    missing = pytest.fail if os.environ.get("ETAMETER_REQUIRE_BROWSER") else pytest.skip
    if not CHROMIUM or not DRIVER:
        missing("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
    except ImportError:
        missing("selenium is not installed (pip install -e '.[dev]')")
    return webdriver


def _browser():
    webdriver = _require_browser()
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="etameter-chromium-")
    for flag in FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    # The system driver, named: selenium would otherwise try to download one.
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    return driver, profile


def _check_page(path, name):
    driver, profile = _browser()
    try:
        driver.set_window_size(1280, 900)
        driver.get(f"file://{path}")
        result = driver.execute_script(CHECKS)
        folder = os.environ.get("ETAMETER_SCREENSHOT_DIR")
        if folder:
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1280, min(height + 100, 12000))
            driver.save_screenshot(os.path.join(folder, f"{name}.png"))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    assert result["images"], "the page has no plots"
    for img in result["images"]:
        assert img["complete"] and img["naturalWidth"] > 0, f"image not loaded: {img['alt']}"
        assert img["right"] <= result["width"] + 0.5, f"image wider than the page: {img}"
    assert not result["overflowing"], result["overflowing"][:5]
    assert result["scrollWidth"] <= result["width"], \
        f"the page scrolls sideways at 1280 px: {result['scrollWidth']} > {result['width']}"
    assert 0 <= result["firstVerdicts"] < result["firstImage"] < result["firstTable"], result


def test_html_report_in_chromium_synthetic(db_path, tmp_path):
    """Long variant names, flagged quality, a skipped run, several groups, a power timeline
    and a throughput series: the page still fits 1280 px."""
    store = _variants_store(db_path)
    path = tmp_path / "report.html"
    path.write_text(html_report(store.runs(), store), encoding="utf-8")
    _check_page(path, "synthetic")


@pytest.mark.slow
def test_html_report_of_a_sweep_in_chromium(db_path, tmp_path):
    """A real (tiny, short) sweep, its report --html, in the browser."""
    _require_browser()  # skip before spending a sweep when there is no browser
    bench = subprocess.run(
        [sys.executable, "-m", "harness.cli", "bench", "--preset", "tiny", "--scenario",
         "prefill", "--variants", "fp32,bf16,fp32+int8-dynamic,fp8", "--steps", "2",
         "--trials", "2", "--warmup", "1", "--window-s", "0.5", "--db", db_path],
        capture_output=True, text=True, timeout=300)
    assert bench.returncode == 0, bench.stderr
    path = tmp_path / "sweep.html"
    report = subprocess.run([sys.executable, "-m", "harness.cli", "report", "--db", db_path,
                             "--html", str(path), "--format", "json"],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    assert len(Store(db_path, write=False).runs()) == 4
    _check_page(path, "sweep")
