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

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not installed"),
]


def _driver(tmp_path: Path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,2000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        opts.add_argument(flag)
    driver_bin = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not os.path.exists(driver_bin):
        pytest.skip("chromedriver not installed")
    return webdriver.Chrome(service=Service(driver_bin), options=opts)


def _ready(driver) -> None:
    """Wait until the page unpacked its embedded data and drew the browsers (no fixed sleep)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.documentElement.getAttribute('data-browsers-ready')")
    )


def test_report_renders_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By

    run = write_synthetic_run(tmp_path / "run")
    info = write_report(run)
    driver = _driver(tmp_path)
    try:
        driver.get(Path(info["report"]).as_uri())
        _ready(driver)
        assert driver.execute_script("return window.__pwned === undefined")  # injected script never ran
        assert "PWNED" not in driver.title
        for sid in SECTIONS:
            el = driver.find_element(By.ID, sid)
            assert el.is_displayed(), sid
            assert el.size["height"] > 50, sid
        imgs = driver.find_elements(By.CSS_SELECTOR, "section img")
        # a persona card shows every field with its provenance once opened
        first = driver.find_elements(By.CSS_SELECTOR, "details.persona")[0]
        driver.execute_script("arguments[0].open = true", first)
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 10).until(lambda d: first.find_elements(By.CSS_SELECTOR, "span.prov"))
        assert len(first.find_elements(By.CSS_SELECTOR, "tr")) == 1 + 33
        assert "<script>window.__pwned" in first.text  # the injected lifestyle is text
        assert imgs and all(driver.execute_script("return arguments[0].naturalWidth > 0", i) for i in imgs)
        # the persona filter hides non-matching cards
        cards = driver.find_elements(By.CSS_SELECTOR, "details.persona")
        assert len(cards) == 3
        driver.find_element(By.ID, "persona-search").send_keys("p-bbb")
        cards = driver.find_elements(By.CSS_SELECTOR, "details.persona")  # the page is redrawn
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


def test_typing_an_occupation_shows_only_matching_personas(tmp_path):
    """120 personas in 3 pages; typing an occupation keeps exactly the personas with it, across pages."""
    import json

    from selenium.webdriver.common.by import By

    from factories import make_persona

    run = write_synthetic_run(tmp_path / "run", evil=False)
    jobs = ["Registered nurses", "Software developers", "Farmers, ranchers, and other agricultural managers"]
    ps = [
        make_persona(f"p-{i:03d}", serialno=f"2024HU{i:07d}", occupation_category=jobs[i % 3])
        for i in range(120)
    ]
    (run / "personas" / "personas.jsonl").write_text(
        "".join(json.dumps(p.model_dump(mode="json")) + "\n" for p in ps)
    )
    info = write_report(run)
    driver = _driver(tmp_path)
    try:
        driver.get(Path(info["report"]).as_uri())
        _ready(driver)
        count = driver.find_element(By.ID, "persona-count")
        assert count.text == "120 of 120 shown"
        assert "page 1 of 3" in driver.find_element(By.ID, "persona-pager").text
        assert len(driver.find_elements(By.CSS_SELECTOR, "details.persona")) == 50  # one page drawn
        driver.find_element(By.ID, "persona-search").send_keys("software dev")
        assert count.text == "40 of 120 shown"
        cards = driver.find_elements(By.CSS_SELECTOR, "#persona-list details.persona")
        assert len(cards) == 40 and all("Software developers" in c.text for c in cards)
        assert {c.get_attribute("id") for c in cards} == {f"persona-p-{i:03d}" for i in range(1, 120, 3)}
        # field = value filter and the flagged box combine with the search
        driver.find_element(By.ID, "persona-search").clear()
        driver.execute_script(
            "var s = document.getElementById('persona-field'); s.value = 'occupation category';"
            "s.dispatchEvent(new Event('change'));"
            "var v = document.getElementById('persona-value'); v.value = 'Farmers, ranchers, and "
            "other agricultural managers'; v.dispatchEvent(new Event('change'));"
        )
        assert count.text == "40 of 120 shown"
        # pairs: split filter
        driver.execute_script(
            "var s = document.getElementById('pair-split'); s.value = 'train';"
            "s.dispatchEvent(new Event('change'));"
        )
        assert driver.find_element(By.ID, "pair-count").text == "1 of 3 shown"
    finally:
        driver.quit()
