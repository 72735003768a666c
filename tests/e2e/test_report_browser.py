"""`capture-replay report` opened in real Chromium through Playwright: two flows recorded through
the recording proxy in front of the live emulator give one HTML file that loads offline, shows the
sessions as lanes with their counts, filters, and opens a thumbnail full size. A screenshot of the
report is kept under test-artifacts/ (gitignored)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.async_api import async_playwright

from mock_server.cli import main
from tests.emulator import RunningEmulator, emulator_config
from tests.mock_server.test_verify import PAGE_V1, record_drift_flow
from tests.pages import EXTRA_PAGES

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def test_report_opens_in_chromium_with_lanes_counts_filters_and_full_size_screenshots(
    chromium, pages, monkeypatch, tmp_path
):
    monkeypatch.setitem(EXTRA_PAGES, "drift", PAGE_V1)
    flows = [tmp_path / "first.cassette", tmp_path / "second.cassette"]
    live = await RunningEmulator(emulator_config()).start()
    try:
        for cassette in flows:
            await record_drift_flow(live.url, pages.url("/drift"), cassette)
    finally:
        await live.stop()
    report = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", *map(str, flows), "-o", str(report)])
    assert result.exit_code == 0, result.output

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            fetched: list[str] = []
            page.on("request", lambda r: fetched.append(r.url))
            await page.goto(report.as_uri())
            # Self-contained: nothing but the file itself and its data URIs is loaded.
            assert [u for u in fetched if not u.startswith(("file:", "data:"))] == []

            assert await page.locator(".lane").count() == 4  # a session + one-shot lane per file
            assert await page.text_content("#n-sessions") == "2 sessions"
            assert await page.text_content("#n-exchanges") == "18 exchanges"
            assert await page.text_content("#n-credits") == "2 credits"
            assert await page.text_content("#shown") == "18 of 18 exchanges"
            assert await page.locator("tr.ex.failed").count() == 2  # the invalid click, twice
            assert await page.locator(".lane-head", has_text="one-shot").count() == 2

            await page.select_option("#f-type", "screenshot")
            assert await page.text_content("#shown") == "2 of 18 exchanges"
            assert await page.locator("tr.ex:visible").count() == 2
            await page.select_option("#f-type", "")
            await page.select_option("#f-status", "failed")
            assert await page.text_content("#shown") == "2 of 18 exchanges"
            await page.select_option("#f-status", "")
            second_session = await page.locator("#f-session option").nth(3).get_attribute("value")
            await page.select_option("#f-session", second_session)
            assert await page.text_content("#shown") == "8 of 18 exchanges"
            await page.select_option("#f-session", "")

            thumbs = page.locator("img.thumb")
            # screenshot answer, click attachment, one-shot image: per flow
            assert await thumbs.count() == 6
            thumb = thumbs.first
            thumb_width = await thumb.evaluate("img => img.naturalWidth")
            full_width = int(await thumb.get_attribute("data-width"))
            assert thumb_width <= 320 < full_width
            await thumb.click()
            viewer = page.locator("#viewer-img")
            await viewer.wait_for(state="visible", timeout=5000)
            assert await page.locator("#viewer").evaluate("d => d.open")
            await page.wait_for_function(
                "document.getElementById('viewer-img').complete", timeout=5000
            )
            assert await viewer.evaluate("img => img.naturalWidth") == full_width
            await page.keyboard.press("Escape")
            assert not await page.locator("#viewer").evaluate("d => d.open")

            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "report.png"
            await page.screenshot(path=str(shot), full_page=False)
            print(f"report screenshot: {shot}")
            assert shot.stat().st_size > 0
        finally:
            await browser.close()
