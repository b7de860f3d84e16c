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
    page.wait_for_function("() => Array.from(document.querySelectorAll('img.overview, img.histogram'))"
                           ".every(i => i.complete && i.naturalWidth > 0)")
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
    page.wait_for_function("() => document.querySelector('#dedoppler-search .count').textContent === '1 of 2 hits match'")
    assert rows.count() == 1
    index_column = section.locator("table.hits th").all_inner_texts().index("index")
    assert rows.first.locator("td").nth(index_column).inner_text() == "1000"
    shot(page, "observation-filtered")
    section.locator("button[type=reset]").click()
    page.wait_for_function("() => document.querySelector('#dedoppler-search .count').textContent === '2 of 2 hits match'")
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
                             ("/sensitivity", "sensitivity", "No reports"), ("/nothing/here", "404", "Not found"),
                             ("/?page=x", "bad-request", "page: Input should be a valid integer")):
        page.goto(site.url + path)
        assert text in page.content(), path
        shot(page, name)
    assert page.errors == [] or all("404" in e or "422" in e for e in page.errors)


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


def test_fill_and_submit_the_hit_search_form(site, page):
    """As a person does: some fields filled, the rest left blank (sent as `name=`), both strength bounds."""
    page.goto(site.url + "/search")
    page.fill("input[name=min_snr]", "30")
    page.fill("input[name=min_statistic]", "0")
    page.click("form[action='/search'] button[type=submit]")
    page.wait_for_url("**/search?*")
    assert "fmin=&" in page.url and "min_snr=30" in page.url   # the browser sends the blank fields too
    rows = page.locator("table.grid tbody tr")
    algorithms = set(rows.locator("td:nth-child(2)").all_inner_texts())
    assert algorithms == {"dedoppler/search", "energy_detection/preprocess_fine"}, algorithms
    assert float(page.locator("input[name=min_snr]").input_value()) == 30
    shot(page, "search-filled")
    rows.first.locator("td:last-child a").click()
    page.wait_for_url("**/hits/*")
    assert page.errors == []


LONG = "GBT_58402_67632_" + "A_VERY_LONG_SOURCE_NAME_" * 7 + "fine"   # 200 characters, the longest link name


@pytest.fixture(scope="module")
def big_site(tmp_path_factory):
    """A bucket with a result of 650 hits (more than a page of the hits table) under a 200-character name."""
    from _webapp import OTHER, write_fake_result

    from bl_reservoir.web import create_app

    root = tmp_path_factory.mktemp("big")
    write_fake_result(root / "bucket", OTHER, 650, seed=7)
    write_fake_result(root / "bucket", LONG, 3, seed=8, source="A SOURCE WITH A NAME THAT GOES ON " * 4)
    app = create_app(bucket=str(root / "bucket"), db=f"sqlite:///{root / 'store.db'}", token=TOKEN)
    with LiveServer(app) as server:
        deadline = time.monotonic() + 60
        while app.state.web.indexing and time.monotonic() < deadline:
            time.sleep(0.1)
        yield server


def test_page_the_hits_table_and_download_its_csv(big_site, page):
    import pandas as pd
    from _webapp import OTHER

    page.goto(f"{big_site.url}/observations/{OTHER}")
    section = page.locator("section.result")
    rows = section.locator("table.hits tbody tr")
    pager = section.locator(".hits-pager")
    statistic = section.locator("table.hits th").all_inner_texts().index("statistic")

    def strengths() -> list[float]:
        return [float(t) for t in rows.locator(f"td:nth-child({statistic + 1})").all_inner_texts()]

    assert rows.count() == 100 and pager.locator(".range").inner_text() == "hits 1–100 of 650"
    first_page = strengths()
    for n in range(1, 7):
        pager.locator("button.next").click()
        low = min(100 * n + 100, 650)
        page.wait_for_function(f"() => document.querySelector('.hits-pager .range').textContent === "
                               f"'hits {100 * n + 1}–{low} of 650'")
    assert rows.count() == 50 and pager.locator("button.next").is_disabled()
    assert max(strengths()) <= min(first_page)   # the strongest first, page after page
    shot(page, "hits-last-page")
    pager.locator("button.prev").click()
    page.wait_for_function("() => document.querySelector('.hits-pager .range').textContent === 'hits 501–600 of 650'")
    # filter, then download what the table shows, whole
    section.locator("input[name=min_statistic]").fill("8000")
    section.locator("button[type=submit]").click()
    page.wait_for_function("() => document.querySelector('.hits-pager .range').textContent.startsWith('hits 1–')")
    total = int(pager.locator(".range").inner_text().rsplit(" ", 1)[1])
    assert 0 < total < 650
    with page.expect_download() as download:
        section.locator("a.csv").click()
    saved = pd.read_csv(download.value.path())
    assert download.value.suggested_filename == f"{OTHER}_energy_detection_preprocess_fine_hits.csv"
    assert len(saved) == total and (saved["statistic"] >= 8000).all()
    assert saved["statistic"].is_monotonic_decreasing   # in the table's order
    shot(page, "hits-filtered")
    assert page.errors == []


def test_long_names_wrap_instead_of_widening_the_page(big_site, page):
    for path in ("/", f"/observations/{LONG}", f"/observations/{LONG}/energy_detection/preprocess_fine/hits/0"):
        page.goto(big_site.url + path)
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), path
    shot(page, "long-name")
    assert page.errors == []


def test_cancel_a_campaign_from_its_page(site, page):
    """Not logged in, the page offers the login; back on the page after it, Cancel stops the campaign and the
    page shows it through its event stream."""
    store = site.app.state.web.jobs
    cid = store.create_campaign("dedoppler/search", [f"/data/obs_{i}.h5" for i in range(5)], bucket="/b")
    first = store.list_jobs(cid)[0]["id"]
    store.start_attempt(first, "tcp://127.0.0.1:9")
    page.goto(f"{site.url}/campaigns/{cid}")
    assert page.locator("#controls button[data-action=cancel]").is_disabled()
    page.click("#controls a")   # "Log in to cancel, retry or resume"
    page.fill("input[name=token]", TOKEN)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"**/campaigns/{cid}")
    cancel = page.locator("#controls button[data-action=cancel]")
    assert cancel.is_enabled() and page.locator("#controls button[data-action=retry]").is_disabled()
    page.on("dialog", lambda dialog: dialog.accept())
    cancel.click()
    page.wait_for_function("() => document.querySelector('#campaign .state').textContent === 'cancelled'")
    page.wait_for_function("() => Array.from(document.querySelectorAll('#jobs td.state'))"
                           ".every(td => td.textContent === 'cancelled')")
    assert page.locator("#controls .message").inner_text() == "5 jobs cancelled"
    assert cancel.is_disabled()
    assert [j["state"] for j in store.list_jobs(cid)] == ["cancelled"] * 5
    shot(page, "campaign-cancelled")
    page.click("header form.session button")   # log out
    page.wait_for_url(site.url + "/")
    assert page.locator("header a.session").inner_text() == "Log in"
    assert page.errors == []


def test_the_docs_render_with_no_network_but_ours(site, page):
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(site.url)
               else route.abort())
    page.goto(site.url + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() >= 20
    shot(page, "docs")
    assert page.errors == []


def test_the_workers_page_refreshes_itself(runner_bucket, tmp_path, page):
    from distributed import Client, LocalCluster
    from test_workers import _fake_job

    from bl_reservoir.scale.tasks import task_key
    from bl_reservoir.web import create_app

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as dask_client:
        app = create_app(bucket=str(runner_bucket[0]), db=f"sqlite:///{tmp_path / 'store.db'}", token=TOKEN,
                         scheduler=cluster.scheduler_address, index_on_start=False)
        with LiveServer(app) as server:
            store = app.state.web.jobs
            cid = store.create_campaign("dedoppler/search", ["/data/refreshed.h5"], bucket="/b")
            job = store.list_jobs(cid)[0]["id"]
            page.goto(server.url + "/workers")
            assert "idle" in page.locator("#workers td.jobs").inner_text()
            page.evaluate("window.__notReloaded = true")
            future = dask_client.submit(_fake_job, job, 8.0, key=task_key(job), pure=False)
            page.wait_for_function("() => document.querySelector('#workers td.jobs').textContent"
                                   ".includes('/data/refreshed.h5')", timeout=30_000)
            assert page.evaluate("window.__notReloaded") is True
            shot(page, "workers-busy")
            future.result()
    assert page.errors == []
