"""Render the report in headless Chromium: main sections visible, filters work, injected script inert."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from report_fixtures import write_synthetic_run

from persona_testbed.pipeline.view import write_report

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SECTIONS = ("summary", "fidelity", "personas", "prompts", "pairs", "bench")

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not installed")]


def _driver(tmp_path: Path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,2000", f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    driver_bin = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not os.path.exists(driver_bin):
        pytest.skip("chromedriver not installed")
    return webdriver.Chrome(service=Service(driver_bin), options=opts)


def test_report_renders_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By

    run = write_synthetic_run(tmp_path / "run")
    info = write_report(run)
    driver = _driver(tmp_path)
    try:
        driver.get(Path(info["report"]).as_uri())
        assert driver.execute_script("return window.__pwned === undefined")  # injected script never ran
        assert "PWNED" not in driver.title
        for sid in SECTIONS:
            el = driver.find_element(By.ID, sid)
            assert el.is_displayed(), sid
            assert el.size["height"] > 50, sid
        imgs = driver.find_elements(By.CSS_SELECTOR, "section img")
        assert imgs and all(driver.execute_script("return arguments[0].naturalWidth > 0", i) for i in imgs)
        # the persona filter hides non-matching cards
        cards = driver.find_elements(By.CSS_SELECTOR, "details.persona")
        assert len(cards) == 3
        driver.find_element(By.ID, "persona-search").send_keys("p-bbb")
        visible = [c for c in cards if c.is_displayed()]
        assert len(visible) == 1 and "p-bbb" in visible[0].text
        assert driver.find_element(By.ID, "persona-count").text == "1 of 3 shown"
        # the injected text is shown as text
        pair_cards = driver.find_elements(By.CSS_SELECTOR, "details.pair")
        driver.execute_script("arguments[0].open = true", pair_cards[0])
        assert "<script>window.__pwned" in pair_cards[0].text
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "report_chromium.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        driver.quit()
