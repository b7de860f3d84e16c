"""The server-rendered pages: content, links, search/sort/paging over ten thousand observations."""

from __future__ import annotations

import re
from urllib.parse import quote

import pandas as pd
import sqlalchemy as sa
from _webapp import OBS, OTHER, TOKEN, make_client, png_size, write_fake_result

from bl_reservoir.scale import schema


def test_observations_page_lists_links_and_sorts(client):
    html = client.get("/").text
    assert f'href="/observations/{OBS}"' in html and f'href="/observations/{OTHER}"' in html
    assert "GBT" in html and "2 observations" in html
    by_mjd = client.get("/?sort=mjd&desc=1").text
    assert by_mjd.index(OBS) < by_mjd.index(OTHER)
    assert client.get("/?q=HIP99999").text.count('href="/observations/') == 1
    assert client.get("/?sort=nope").status_code == 422


def test_observation_page_has_every_section(client):
    html = client.get(f"/observations/{OBS}").text
    for algorithm in ("dedoppler/search", "energy_detection/preprocess_fine"):
        package, name = algorithm.split("/")
        assert f"/api/observations/{OBS}/{package}/{name}/overview.png" in html
        assert f"/api/observations/{OBS}/{package}/{name}/hits/0.png?size=thumb" in html
        assert f'data-api="/api/observations/{OBS}/{package}/{name}/hits"' in html
    assert 'name="drift_min"' in html and 'name="min_snr"' in html and 'name="min_statistic"' in html
    assert "fch1" in html and "1501" in html


def test_hit_page_links_neighbours_and_the_picture(client):
    html = client.get(f"/observations/{OBS}/dedoppler/search/hits/1").text
    assert f'src="/api/observations/{OBS}/dedoppler/search/hits/1.png"' in html
    assert 'rel="prev"' in html and 'rel="next"' not in html
    assert "drift_rate" in html and "energy_detection/preprocess_fine hit" in html


def test_missing_things_get_an_html_404(client):
    for path in (f"/observations/{OBS}/dedoppler/search/hits/9", "/observations/nothing", "/no/such/page",
                 "/campaigns/nope", "/sensitivity/nope"):
        response = client.get(path)
        assert response.status_code == 404 and "Not found" in response.text, path


def test_submit_page_without_a_token_says_why(runner_bucket, tmp_path):
    with make_client(runner_bucket[0], tmp_path / "store.db", token="", index_on_start=False) as c:
        html = c.get("/submit").text
        assert "Submitting is off" in html and "BL_RESERVOIR_TOKEN" in html
        assert re.search(r"<fieldset\s+disabled", html)


def test_submit_page_lists_the_registry(client):
    html = client.get("/submit").text
    assert '<option value="dedoppler/search">' in html and '<option value="energy_detection/preprocess_fine">' in html
    assert "Submitting is off" not in html


def test_campaign_pages(client, runner_bucket):
    store = client.app.state.web.jobs
    cid = store.create_campaign("dedoppler/search", ["/data/a.h5"], bucket=str(runner_bucket[0]))
    assert f'href="/campaigns/{cid}"' in client.get("/campaigns").text
    html = client.get(f"/campaigns/{cid}").text
    assert f'data-stream="/api/campaigns/{cid}/events"' in html and "/data/a.h5" in html and "queued" in html


def test_workers_search_and_sensitivity_pages(client):
    assert "No Dask scheduler is configured" in client.get("/workers").text
    found = client.get("/search?drift_min=0.4").text
    assert f"/observations/{OBS}/dedoppler/search/hits/0" in found
    assert "Give at least one bound" in client.get("/search").text
    assert "No reports" in client.get("/sensitivity").text


def test_ten_thousand_observations_page_from_the_index(runner_bucket, tmp_path):
    with make_client(runner_bucket[0], tmp_path / "store.db", index_on_start=False) as c:
        engine = c.app.state.web.index.engine
        rows = [{"obs_name": f"GBT_{58000 + i // 100}_{i:05d}_HIP{i}_fine", "source": f"HIP{i}",
                 "mjd": 58000.0 + i / 100, "band": "L", "n_hits": i % 7, "updated": "2026-01-01T00:00:00Z"}
                for i in range(10_000)]
        with engine.begin() as conn:
            conn.execute(sa.insert(schema.observations), rows)
        assert c.get("/api/observations?limit=1").json()["total"] == 10_000
        last = c.get("/?page=200").text
        assert "page 200 of 200" in last and "GBT_58099_09999_HIP9999_fine" in last
        assert last.count('href="/observations/') == 50
        newest = c.get("/?sort=mjd&desc=1").text
        assert newest.index("GBT_58099_09999_HIP9999_fine") < newest.index("GBT_58099_09950_HIP9950_fine")
        assert c.get("/?q=HIP123").text.count('href="/observations/') == 11  # HIP123 and HIP1230..HIP1239


def test_the_search_form_as_a_browser_sends_it(client):
    """Every field sent, most of them blank: the blank ones are not given (was a raw 422 JSON answer)."""
    blank = {"fmin": "", "fmax": "", "min_snr": "", "min_statistic": "", "drift_min": "", "drift_max": "",
             "algorithm": "", "observation": ""}
    found = client.get("/search", params={**blank, "drift_min": "0.4"})
    assert found.status_code == 200 and found.headers["content-type"].startswith("text/html")
    assert f"/observations/{OBS}/dedoppler/search/hits/0" in found.text
    assert "Give at least one bound" in client.get("/search", params=blank).text
    api = client.get("/api/hits", params={**blank, "drift_min": "0.4"})
    assert api.status_code == 200 and [(h["observation"], h["row"]) for h in api.json()["items"]] == [(OBS, 0)]


def test_an_snr_and_a_statistic_bound_find_both_kinds_of_hits(client):
    """With every field filled, both strength bounds given: each applies to the hits that have it (was: none
    matched, no hit has both an SNR and a statistic)."""
    both = client.get("/api/hits?min_snr=30&min_statistic=0&limit=1000").json()["items"]
    algorithms = {h["algorithm"] for h in both}
    assert algorithms == {"dedoppler/search", "energy_detection/preprocess_fine"}
    assert all(h["snr"] >= 30 for h in both if h["algorithm"] == "dedoppler/search")
    page = client.get("/search?fmin=1000&fmax=2000&min_snr=30&min_statistic=0&drift_min=-1&drift_max=1").text
    assert f"/observations/{OBS}/dedoppler/search/hits/" in page   # drift bounds keep dedoppler hits only
    assert "energy_detection" not in page.split("<tbody>", 1)[1]


def test_a_bad_query_string_gets_an_html_page_and_the_api_json(client):
    page = client.get("/?page=x")
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "page: Input should be a valid integer" in page.text and "(given &#39;x&#39;)" in page.text
    assert client.get("/search?fmin=abc").status_code == 422 and "fmin" in client.get("/search?fmin=abc").text
    api = client.get("/api/observations?limit=x")
    assert api.status_code == 422 and api.headers["content-type"] == "application/json"
    assert api.json()["detail"][0]["loc"] == ["query", "limit"]


def test_login_returns_to_the_deep_link_and_logout_clears_the_cookie(runner_bucket, tmp_path):
    deep = f"/observations/{OBS}/dedoppler/search/hits/1"
    with make_client(runner_bucket[0], tmp_path / "store.db", token=TOKEN, auth_read=True) as c:
        c.app.state.indexer.join(60)
        asked = c.get(deep + "?x=1", follow_redirects=False)
        assert asked.status_code == 303 and asked.headers["location"] == "/login?next=" + quote(deep + "?x=1", safe="")
        form = c.get(asked.headers["location"]).text
        assert f'name="next" value="{deep}?x=1"' in form
        logged = c.post("/login", data={"token": TOKEN, "next": deep}, follow_redirects=False)
        assert logged.status_code == 303 and logged.headers["location"] == deep
        page = c.get(deep)
        assert page.status_code == 200 and 'action="/logout"' in page.text
        out = c.post("/logout", follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert 'bl_token=""' in out.headers["set-cookie"] and "max-age=0" in out.headers["set-cookie"].lower()
        assert c.get(deep, follow_redirects=False).status_code == 303   # the cookie is gone
        for elsewhere in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
            sent = c.post("/login", data={"token": TOKEN, "next": elsewhere}, follow_redirects=False)
            assert sent.headers["location"] == "/", elsewhere


def test_telescope_comes_from_the_header(tmp_path):
    bucket = tmp_path / "bucket"
    parkes = "GBT_58402_00001_HIP1_fine"   # a GBT-like name, a Parkes header: the header wins
    write_fake_result(bucket, parkes, 2, source="HIP1")
    header = bucket / parkes / "energy_detection" / "preprocess_fine" / "header.json"
    header.write_text(header.read_text().replace('"telescope_id": 6', '"telescope_id": 4'))
    write_fake_result(bucket, "GBT_58402_00002_HIP2_fine", 2, source="HIP2")            # telescope_id 6
    unnamed = bucket / "blc00_guppi_58402_00003_HIP3" / "energy_detection" / "preprocess_fine"
    write_fake_result(bucket, "blc00_guppi_58402_00003_HIP3", 2, source="HIP3")
    (unnamed / "header.json").write_text((unnamed / "header.json").read_text().replace('"telescope_id": 6, ', "")
                                         .replace(', "telescope_id": 6', ""))
    with make_client(bucket, tmp_path / "store.db") as c:
        c.app.state.indexer.join(60)
        scopes = {o["obs_name"]: o["telescope"] for o in c.get("/api/observations").json()["items"]}
        assert scopes == {parkes: "Parkes", "GBT_58402_00002_HIP2_fine": "GBT",
                          "blc00_guppi_58402_00003_HIP3": "GBT"}   # no telescope_id: the name's BLC prefix
        assert "<td>Parkes</td>" in c.get("/").text
        assert c.get(f"/api/observations/{parkes}").json()["summary"]["telescope"] == "Parkes"
        assert 'class="telescope">Parkes<' in c.get(f"/observations/{parkes}").text


def test_observation_page_shows_the_strongest_hits_per_band_and_a_histogram(tmp_path):
    from bl_reservoir.web.pages import BAND_THUMBNAILS

    bucket = tmp_path / "bucket"
    write_fake_result(bucket, OTHER, 40, fch1=1420.0)   # 1419.98-1420.0 MHz: all in 1400-1700
    with make_client(bucket, tmp_path / "store.db") as c:
        c.app.state.indexer.join(60)
        html = c.get(f"/observations/{OTHER}").text
        base = f"/observations/{OTHER}/energy_detection/preprocess_fine"
        assert 'data-band="1400-1700"' in html and 'data-band="1000-1400"' not in html
        hits = pd.read_parquet(bucket / OTHER / "energy_detection" / "preprocess_fine" / "info_df.parquet")
        top = hits["statistic"].sort_values(ascending=False).index[:BAND_THUMBNAILS].tolist()
        shown = [int(i) for i in re.findall(rf'href="{base}/hits/(\d+)" class="thumb"', html)]
        assert shown == top
        picture = c.get(f"/api{base}/histogram.png")
        assert picture.status_code == 200 and png_size(picture.content) == (900, 260)
        assert f'src="/api{base}/histogram.png"' in html


def test_no_listed_link_is_a_dead_end(client):
    """Every link of the observations list, the search and an observation page answers; a name outside the
    naming rule (230 characters, spaces, `<`: no page can serve it) is listed without a link."""
    bad = "GBT 58402 <script>" + "x" * 212
    index = client.app.state.web.index
    index.index_result(None, bad, "dedoppler/search", f"/elsewhere/{bad}/dedoppler/search",
                       {"source_name": "BAD", "fch1": 1400.0, "foff": -1e-6, "nchans": 10, "tstart": 60000.0},
                       pd.DataFrame({"freqs": [1399.99999], "snr": [99.0], "drift_rate": [0.5]}))
    pages = {"/": client.get("/").text, "/search": client.get("/search?min_snr=50").text,
             f"/observations/{OBS}": client.get(f"/observations/{OBS}").text}
    assert "(not served: its name breaks the naming rule)" in pages["/"] and "&lt;script&gt;" in pages["/"]
    assert "&lt;script&gt;" in pages["/search"]
    links = {link for html in pages.values() for link in re.findall(r'href="(/(?:observations|cadences)[^"]*)"', html)}
    assert len(links) > 8
    for link in sorted(links):
        assert client.get(link).status_code == 200, link
