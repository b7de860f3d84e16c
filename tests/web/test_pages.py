"""The server-rendered pages: content, links, search/sort/paging over ten thousand observations."""

from __future__ import annotations

import re

import sqlalchemy as sa
from _webapp import OBS, OTHER, make_client

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
