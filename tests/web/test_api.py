"""The C7 JSON API over a bucket made by the runner: routes, filters, pictures, tokens, traversal."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _webapp import OBS, OTHER, TOKEN, asgi_get, make_client, png_size

from bl_reservoir.results import read_results
from bl_reservoir.web.pictures import track_columns

DD = f"/api/observations/{OBS}/dedoppler/search"
ED = f"/api/observations/{OBS}/energy_detection/preprocess_fine"


def test_healthz_is_open_and_reports_the_bucket(client, runner_bucket):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["bucket"] == str(runner_bucket[0])
    assert body["indexing"] is False and body["writes"] is True


def test_observations_list_comes_from_the_index(client):
    body = client.get("/api/observations").json()
    assert body["total"] == 2
    names = [o["obs_name"] for o in body["items"]]
    assert names == sorted([OBS, OTHER])
    first = body["items"][names.index(OBS)]
    assert first["source"] == "SYNTHETIC" and first["mjd"] == 60000.0 and first["band"] == "L"
    assert first["algorithms"] == ["dedoppler/search", "energy_detection/preprocess_fine"]
    assert first["hits"]["dedoppler/search"] == 2
    other = body["items"][names.index(OTHER)]
    assert other["hits"] == {"energy_detection/preprocess_fine": 5} and other["source"] == "HIP99999"


def test_observations_search_sort_and_paging(client):
    assert [o["obs_name"] for o in client.get("/api/observations?search=hip99").json()["items"]] == [OTHER]
    by_mjd = client.get("/api/observations?sort=mjd&descending=true").json()["items"]
    assert [o["obs_name"] for o in by_mjd] == [OBS, OTHER]  # MJD 60000 (synthetic) > 58410.1
    page = client.get("/api/observations?limit=1&offset=1").json()
    assert page["total"] == 2 and len(page["items"]) == 1
    assert client.get("/api/observations?sort=bogus").status_code == 422
    assert client.get("/api/observations?limit=0").status_code == 422


def test_observation_has_header_and_results_per_algorithm(client, runner_bucket):
    body = client.get(f"/api/observations/{OBS}").json()
    assert body["header"]["fch1"] == 1501.0 and body["header"]["nchans"] == 8192
    results = {r["algorithm"]: r for r in body["results"]}
    assert set(results) == {"dedoppler/search", "energy_detection/preprocess_fine"}
    assert results["dedoppler/search"]["strength"] == "snr"
    assert results["energy_detection/preprocess_fine"]["strength"] == "statistic"
    expected = read_results(runner_bucket[0] / OBS / "energy_detection" / "preprocess_fine", stamps=False)
    assert results["energy_detection/preprocess_fine"]["n_hits"] == len(expected.hits)
    assert results["dedoppler/search"]["manifest"]["algorithm"]["name"] == "search"


def test_hits_table_matches_the_injected_signals(client, runner_bucket):
    truth = runner_bucket[1]
    body = client.get(f"{DD}/hits").json()
    assert body["n_hits"] == body["total"] == 2
    rows = sorted(body["items"], key=lambda r: r["index"])
    assert [r["index"] for r in rows] == sorted(truth["index"].tolist())
    assert [r["i"] for r in body["items"]] == [0, 1]
    by_index = {r["index"]: r for r in rows}
    for _, signal in truth.iterrows():
        assert by_index[int(signal["index"])]["drift_rate"] == pytest.approx(signal["drift_rate"], abs=0.02)
        assert by_index[int(signal["index"])]["snr"] > 30


def test_hits_filters_and_sorting(client, runner_bucket):
    truth = runner_bucket[1].set_index("index")
    positive = client.get(f"{DD}/hits?drift_min=0").json()
    assert [r["index"] for r in positive["items"]] == [1000] and positive["total"] == 1
    negative = client.get(f"{DD}/hits?drift_max=0").json()
    assert [r["index"] for r in negative["items"]] == [7096]
    f = truth.loc[1000, "freq_start"]
    around = client.get(f"{DD}/hits", params={"fmin": f - 1e-4, "fmax": f + 1e-4}).json()
    assert [r["index"] for r in around["items"]] == [1000]
    assert client.get(f"{DD}/hits?min_snr=1e6").json()["total"] == 0
    by_snr = client.get(f"{DD}/hits?sort=snr&descending=true").json()["items"]
    assert by_snr[0]["snr"] >= by_snr[1]["snr"]
    by_freq = client.get(f"{DD}/hits?sort=freqs").json()["items"]
    assert by_freq[0]["freqs"] <= by_freq[1]["freqs"]
    # a bound on a column the result lacks matches nothing
    assert client.get(f"{ED}/hits?min_snr=1").json()["total"] == 0
    statistic = client.get(f"{ED}/hits?min_statistic=0").json()
    assert statistic["total"] == statistic["n_hits"] > 0


def test_hit_picture_is_a_png_of_the_stamp(client, runner_bucket):
    full = client.get(f"{DD}/hits/0.png")
    assert full.status_code == 200 and full.headers["content-type"] == "image/png"
    assert png_size(full.content) == (800, 640)
    thumb = client.get(f"{DD}/hits/0.png?size=thumb")
    result = read_results(runner_bucket[0] / OBS / "dedoppler" / "search")
    n_time = result.stamps.shape[1]
    header, hit = result.header, result.hits.iloc[0].to_dict()
    # a wide dedoppler stamp is cropped to the track: 0.5 Hz/s over 15 x 18.25 s / 2.79 Hz = 49 channels + margins
    columns = track_columns(result.stamps[0], header, hit)
    assert columns.stop - columns.start == 49 + 2 * 48 + 1
    assert png_size(thumb.content) == (columns.stop - columns.start, n_time * (96 // n_time))
    stamps = np.load(runner_bucket[0] / OBS / "energy_detection" / "preprocess_fine" / "filtered.npy")
    ed_thumb = client.get(f"{ED}/hits/0.png?size=thumb")
    assert png_size(ed_thumb.content) == (stamps.shape[2], n_time * (96 // n_time))
    again = client.get(f"{DD}/hits/0.png", headers={"If-None-Match": full.headers["etag"]})
    assert again.status_code == 304
    assert client.app.state.web.pictures.renders == 3
    assert client.get(f"{DD}/hits/2.png").status_code == 404
    assert client.get(f"{DD}/hits/-1.png").status_code == 404
    overview = client.get(f"{DD}/overview.png")
    assert png_size(overview.content) == (900, 360)


def test_hit_detail_links_neighbours_and_other_algorithms(client):
    body = client.get(f"{DD}/hits/0").json()
    assert body["prev"] is None and body["next"] == 1 and body["fields"]["index"] == 1000
    assert any(o["algorithm"] == "energy_detection/preprocess_fine" for o in body["others"])
    assert client.get(f"{DD}/hits/5").status_code == 404


def test_hit_search_across_observations(client):
    found = client.get("/api/hits?min_statistic=0").json()["items"]
    assert {h["observation"] for h in found} == {OBS, OTHER}
    drifting = client.get("/api/hits?drift_min=0.4").json()["items"]
    assert [(h["observation"], h["row"]) for h in drifting] == [(OBS, 0)]


@pytest.mark.parametrize("path", [
    f"/api/observations/{OBS}/dedoppler/search/hits/%2e%2e.png",
    "/api/observations/%2e%2e",
    "/api/observations/%2E%2E/%2e%2e/etc/hits",
    "/api/observations/..%2F..%2Fetc%2Fpasswd",
    f"/api/observations/{OBS}%2Fdedoppler%2Fsearch",
    "/api/observations/%2Fetc%2Fpasswd",
    "/api/observations/a%5Cb",
    "/api/observations/a%00b",
    f"/api/observations/{OBS}/dedoppler/..%2f..%2f/hits",
    "/api/observations/.hidden",
    "/api/observations/sensitivity",
])
def test_traversal_is_not_found(client, path):
    response = client.get(path)
    assert response.status_code == 404, path
    assert b"root:" not in response.content


@pytest.mark.parametrize("raw", [
    b"/api/observations/../../../etc/passwd",
    b"/api/observations/" + OBS.encode() + b"/../../etc/dedoppler/search/hits",
    b"/api/observations/" + OBS.encode() + b"/dedoppler/search/hits/../../../../header.json",
    b"/api/observations/a\\b",
    b"/static/../app.py",
    b"/static/%2e%2e/app.py",
    b"/static/..%2fapp.py",
])
def test_raw_traversal_is_not_found(client, raw):
    status, body = asgi_get(client.app, raw)
    assert status == 404 and b"root:" not in body and b"import" not in body


def test_writes_need_the_token(client, runner_bucket):
    body = {"algorithm": "dedoppler/search", "inputs": [str(runner_bucket[2])]}
    assert client.post("/api/jobs", json=body).status_code == 401
    wrong = client.post("/api/jobs", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert client.post("/api/jobs", json=body, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.post("/api/reindex").status_code == 401
    assert client.get("/api/jobs").status_code == 200


def test_submit_validates_before_creating_anything(client, runner_bucket):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    unknown = client.post("/api/jobs", json={"algorithm": "nope/nope", "inputs": ["/x.h5"]}, headers=auth)
    assert unknown.status_code == 422 and "unknown algorithm" in unknown.json()["detail"]
    scheme = client.post("/api/jobs", json={"algorithm": "dedoppler/search", "inputs": ["ftp://x/y.h5"]},
                         headers=auth)
    assert scheme.status_code == 422 and "ftp" in scheme.json()["detail"]
    assert client.post("/api/jobs", json={"algorithm": "dedoppler/search", "inputs": []},
                       headers=auth).status_code == 422
    assert client.get("/api/campaigns").json()["items"] == []


def test_writes_are_off_without_a_token(runner_bucket, tmp_path):
    with make_client(runner_bucket[0], tmp_path / "store.db", token="", index_on_start=False) as c:
        response = c.post("/api/jobs", json={"algorithm": "dedoppler/search", "inputs": ["/x.h5"]},
                          headers={"Authorization": "Bearer anything"})
        assert response.status_code == 403 and "BL_RESERVOIR_TOKEN" in response.json()["detail"]
        assert c.get("/healthz").json()["writes"] is False


def test_auth_read_closes_reads_but_not_healthz(runner_bucket, tmp_path):
    with make_client(runner_bucket[0], tmp_path / "store.db", token=TOKEN, auth_read=True) as c:
        c.app.state.indexer.join(60)
        assert c.get("/healthz").status_code == 200
        assert c.get("/api/observations").status_code == 401
        assert c.get(f"{DD}/hits/0.png").status_code == 401
        assert c.get("/api/observations", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = c.get("/api/observations", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()["total"] == 2
        page = c.get("/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert c.post("/login", data={"token": "wrong"}).status_code == 401
        logged = c.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert logged.status_code == 303 and "httponly" in logged.headers["set-cookie"].lower()
        assert c.get("/").status_code == 200  # the cookie now opens reads
        # ... but never writes
        assert c.post("/api/reindex").status_code == 401


def test_security_headers_on_every_answer(client):
    for path in ("/", "/api/observations", f"{DD}/hits/0.png", "/api/observations/nothing-here"):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]


def test_reindex_with_the_token(client):
    response = client.post("/api/reindex", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.json() == {"indexed": 3}


def test_jobs_campaigns_and_their_event_streams(client, runner_bucket):
    store = client.app.state.web.jobs
    cid = store.create_campaign("dedoppler/search", ["/data/a.h5", "/data/b.h5"], bucket=str(runner_bucket[0]))
    a, b = (j["id"] for j in store.list_jobs(cid))
    store.record_event({"event": "received", "job": a, "input": "/data/a.h5"})
    store.start_attempt(a, "tcp://127.0.0.1:9")
    result = f"{runner_bucket[0]}/{OBS}/dedoppler/search"
    store.finish_job(a, "succeeded", result_uri=result, n_hits=2, wall_seconds=1.5)
    store.finish_job(b, "failed", error="/data/b.h5: no such file")
    store.close_campaign(cid)

    jobs = client.get(f"/api/jobs?campaign={cid}").json()["items"]
    assert [(j["state"], j["attempts"]) for j in jobs] == [("succeeded", 1), ("failed", 0)]
    with_token = {"Authorization": f"Bearer {TOKEN}"}   # without it local paths are shortened (test_security.py)
    assert client.get("/api/jobs?state=failed", headers=with_token).json()["items"][0]["error"] == \
        "/data/b.h5: no such file"
    job = client.get(f"/api/jobs/{a}").json()
    assert job["worker"] == "tcp://127.0.0.1:9" and [e["kind"] for e in job["events"]] == ["received"]
    assert isinstance(job["log"], str)  # log.txt uploaded by the runner beside the result
    assert client.get("/api/jobs/nope").status_code == 404

    campaign = client.get(f"/api/campaigns/{cid}").json()
    assert campaign["progress"] == {"total": 2, "ended": 2, "percent": 100.0}
    assert client.get("/api/campaigns").json()["items"][0]["id"] == cid

    with client.stream("GET", f"/api/jobs/{a}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    messages = [m for m in text.split("\n\n") if m.strip()]
    assert messages[0].startswith("id: ") and "event: received" in messages[0]
    assert "event: end" in messages[-1] and '"state":"succeeded"' in messages[-1]

    with client.stream("GET", f"/api/campaigns/{cid}/events") as stream:
        text = "".join(stream.iter_text())
    messages = [json.loads(m.split("data: ", 1)[1]) for m in text.strip().split("\n\n")]
    first, last = messages[0], messages[-1]   # the whole campaign first; the end says only how it ended
    assert first["full"] is True and [j["state"] for j in first["jobs"]] == ["succeeded", "failed"]
    assert last["progress"]["percent"] == 100.0 and last["jobs"] == [] and last["state"] == "finished"


def test_workers_without_a_scheduler(client):
    assert client.get("/api/workers").json() == {"scheduler": None, "workers": [], "error": None}


def test_openapi_lists_every_c7_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/observations", "/api/observations/{obs}", "/api/observations/{obs}/{package}/{name}/hits",
                 "/api/observations/{obs}/{package}/{name}/hits/{i}.png", "/api/jobs", "/api/jobs/{job_id}",
                 "/api/jobs/{job_id}/events", "/api/workers", "/healthz"):
        assert path in paths, path
    assert "post" in paths["/api/jobs"]
    assert client.get("/docs").status_code == 200


def test_an_unindexed_observation_is_read_from_the_bucket(runner_bucket, tmp_path):
    with make_client(runner_bucket[0], tmp_path / "store.db", index_on_start=False) as c:
        assert c.get("/api/observations").json()["total"] == 0  # lists come from the index only
        found = c.get(f"/api/observations/{OBS}").json()
        assert [r["algorithm"] for r in found["results"]] == ["dedoppler/search", "energy_detection/preprocess_fine"]
        assert c.get(f"{DD}/hits/0.png?size=thumb").status_code == 200


def test_waterfalls_drawn_in_processes_match_the_threaded_ones(runner_bucket, tmp_path, client):
    threaded = client.get(f"{DD}/hits/1.png").content
    with make_client(runner_bucket[0], tmp_path / "pool.db", render_processes=1) as c:
        c.app.state.indexer.join(60)
        pooled = c.get(f"{DD}/hits/1.png")
        assert pooled.status_code == 200 and pooled.content == threaded


def test_docs_are_served_from_the_package_not_a_cdn(client):
    """/docs was blank offline: Swagger UI's script and styles came from cdn.jsdelivr.net."""
    for page, assets in (("/docs", ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css")),
                         ("/redoc", ("/docs-assets/redoc.standalone.js",))):
        answer = client.get(page)
        assert answer.status_code == 200 and "cdn." not in answer.text and "https://" not in answer.text, page
        csp = answer.headers["content-security-policy"]
        assert "cdn." not in csp and "https:" not in csp
        for asset in assets:
            assert f'"{asset}"' in answer.text or f"'{asset}'" in answer.text, asset
            served = client.get(asset)
            assert served.status_code == 200 and len(served.content) > 100_000, asset
    assert "/openapi.json" in client.get("/docs").text
