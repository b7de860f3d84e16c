"""The pages in a real browser: Debian's Chromium driven by Playwright (never `playwright install`).

Screenshots of every page land in `test-artifacts/` (gitignored; CI keeps them as artifacts).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _webapp import OBS, TOKEN, LiveServer, require

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser():
    require(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def site(runner_bucket, tmp_path):
    from bl_reservoir.web import create_app

    app = create_app(bucket=str(runner_bucket[0]), db=f"sqlite:///{tmp_path / 'store.db'}", token=TOKEN)
    with LiveServer(app) as server:
        deadline = time.monotonic() + 60
        while app.state.web.indexing and time.monotonic() < deadline:
            time.sleep(0.1)
        yield server


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    opened = context.new_page()
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(str(e)))
    opened.errors = errors
    yield opened
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)


def test_observations_to_observation_to_hit(site, page):
    page.goto(site.url + "/")
    assert page.locator("#observations tbody tr").count() == 2
    shot(page, "observations")
    page.click(f"text={OBS}")
    page.wait_for_url(f"**/observations/{OBS}")
    assert page.locator("section.result").count() == 2
    thumbs = page.locator(".thumbs img")
    thumbs.first.scroll_into_view_if_needed()
    page.wait_for_function("() => Array.from(document.querySelectorAll('.thumbs img')).every(i => i.complete && i.naturalWidth > 0)")
    page.wait_for_function("() => Array.from(document.querySelectorAll('img.overview')).every(i => i.complete && i.naturalWidth > 0)")
    shot(page, "observation")
    page.locator("#dedoppler-search .thumbs a").first.click()
    page.wait_for_url("**/dedoppler/search/hits/*")
    page.wait_for_function("() => document.getElementById('waterfall').complete")
    assert page.eval_on_selector("#waterfall", "i => i.naturalWidth") == 800
    assert page.locator("text=Found by other algorithms").count() == 1
    assert page.locator(".others a").count() >= 1
    shot(page, "hit")
    page.click("a[rel=next]")
    page.wait_for_url("**/hits/1")
    page.wait_for_function("() => document.getElementById('waterfall').naturalWidth > 0")
    assert page.errors == []


def test_filter_and_sort_the_hits_table(site, page):
    page.goto(f"{site.url}/observations/{OBS}")
    section = page.locator("#dedoppler-search")
    rows = section.locator("table.hits tbody tr")
    assert rows.count() == 2
    section.locator("input[name=drift_min]").fill("0")
    section.locator("button[type=submit]").click()
    page.wait_for_function("() => document.querySelector('#dedoppler-search .count').textContent.startsWith('1 of 1')")
    assert rows.count() == 1
    index_column = section.locator("table.hits th").all_inner_texts().index("index")
    assert rows.first.locator("td").nth(index_column).inner_text() == "1000"
    shot(page, "observation-filtered")
    section.locator("button[type=reset]").click()
    page.wait_for_function("() => document.querySelector('#dedoppler-search .count').textContent.startsWith('2 of 2')")
    section.locator("th[data-column=freqs]").click()
    page.wait_for_function("() => document.querySelector('#dedoppler-search th[data-column=freqs]').classList.contains('sorted-asc')")
    assert rows.first.locator("td").nth(index_column).inner_text() == "7096"  # the lower frequency first
    assert page.errors == []


def test_submit_and_watch_the_progress_bar(site, page, runner_bucket, tmp_path):
    page.goto(site.url + "/submit")
    shot(page, "submit")
    page.select_option("select[name=algorithm]", "energy_detection/preprocess_fine")
    page.fill("textarea[name=inputs]", str(runner_bucket[2]))
    page.fill("input[name=bucket]", str(tmp_path / "browser-bucket"))
    page.fill("input[name=token]", TOKEN)
    page.click("#submit button[type=submit]")
    page.wait_for_url("**/campaigns/*", timeout=120_000)
    page.evaluate("window.__notReloaded = true")
    assert page.eval_on_selector("#progress", "p => p.value") < 100
    page.wait_for_function("() => document.getElementById('progress').value === 100", timeout=300_000)
    assert page.evaluate("window.__notReloaded") is True  # updated through the event stream, not a reload
    page.wait_for_function("() => document.querySelector('#jobs td.state').textContent === 'succeeded'")
    page.locator("button.log").first.click()
    page.wait_for_function("() => !document.getElementById('log-view').hidden")
    shot(page, "campaign")
    page.goto(site.url + "/campaigns")
    assert page.eval_on_selector("#campaigns progress", "p => p.value") == 100
    shot(page, "campaigns")
    assert page.errors == []


def test_other_pages_render(site, page):
    for path, name, text in (("/workers", "workers", "No Dask scheduler"), ("/search?min_statistic=0", "search", OBS),
                             ("/sensitivity", "sensitivity", "No reports"), ("/nothing/here", "404", "Not found")):
        page.goto(site.url + path)
        assert text in page.content(), path
        shot(page, name)
    assert page.errors == [] or all("404" in e for e in page.errors)


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory):
    """The demo's cadence (both built-ins on the embedded cluster, events stage included) served live."""
    from bl_reservoir.demo import run_demo
    from bl_reservoir.web import create_app

    root = tmp_path_factory.mktemp("demo")
    db = f"sqlite:///{root / 'store.db'}"
    run_demo(root / "cadence", bucket=str(root / "bucket"), db=db)
    with LiveServer(create_app(bucket=str(root / "bucket"), db=db, token=TOKEN, index_on_start=False)) as server:
        yield server


def test_cadences_to_cadence_to_an_events_hit_and_back(demo_site, page):
    page.goto(demo_site.url + "/cadences")
    rows = page.locator("#cadences tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("td").nth(1).inner_text() == "DEMO_TARGET"
    assert rows.first.locator("td").nth(4).inner_text() == "6" and rows.first.locator("td").nth(5).inner_text() == "2"
    shot(page, "cadences")
    page.click("text=cadence_0_ON_DEMO_TARGET")
    page.wait_for_url("**/cadences/cadence_0_ON_DEMO_TARGET")
    assert [t.strip() for t in page.locator("#members tbody tr td:nth-child(2)").all_inner_texts()] == \
        ["ON", "OFF", "ON", "OFF", "ON", "OFF"]
    assert page.locator("section.event").count() == 2
    page.wait_for_function("() => Array.from(document.querySelectorAll('section.event img'))"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    assert page.eval_on_selector("#event-0 img", "i => i.naturalWidth") == 720
    shot(page, "cadence")
    page.locator("#event-0 .others a").nth(1).click()   # its hit in the second ON
    page.wait_for_url("**/cadence_2_ON_DEMO_TARGET/dedoppler/search/hits/*")
    page.wait_for_function("() => document.getElementById('waterfall').complete")
    page.click(".cadence-links a")
    page.wait_for_url("**/cadences/cadence_0_ON_DEMO_TARGET")
    assert page.errors == []
