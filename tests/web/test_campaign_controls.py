"""A campaign from its page: cancel, retry and resume (token, or login cookie from our page), and an event
stream that sends only what changed."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from _webapp import TOKEN, LiveServer, make_client

from bl_reservoir.results import utcnow

PAGE = {"X-Requested-With": "bl-reservoir"}


def _campaign(client, n: int = 2) -> tuple[str, list[str]]:
    store = client.app.state.web.jobs
    cid = store.create_campaign("dedoppler/search", [f"/data/{i}.h5" for i in range(n)], bucket="/srv/bucket")
    return cid, [j["id"] for j in store.list_jobs(cid)]


def test_cancel_needs_the_token_or_the_cookie_from_our_page(client):
    cid, jobs = _campaign(client)
    url = f"/api/campaigns/{cid}/cancel"
    assert client.post(url).status_code == 401
    assert client.post(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    client.cookies.set("bl_token", TOKEN)
    assert client.post(url).status_code == 401                    # the cookie alone: a forged form has it too
    assert client.post(url, headers={**PAGE, "Sec-Fetch-Site": "cross-site"}).status_code == 401
    done = client.post(url, headers={**PAGE, "Sec-Fetch-Site": "same-origin"})
    assert done.status_code == 200 and done.json() == {"campaign": cid, "cancelled": 2}
    store = client.app.state.web.jobs
    assert [j["state"] for j in store.list_jobs(cid)] == ["cancelled", "cancelled"]
    assert store.get_campaign(cid)["state"] == "cancelled"
    # the job's task ends after the cancel with a result: the job stays cancelled
    store.finish_job(jobs[0], "succeeded", result_uri="/srv/bucket/0/dedoppler/search", n_hits=1)
    assert client.get(f"/api/jobs/{jobs[0]}").json()["state"] == "cancelled"
    client.cookies.clear()
    assert client.post("/api/campaigns/nope/cancel", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    # the cookie never submits a campaign
    client.cookies.set("bl_token", TOKEN)
    assert client.post("/api/jobs", json={"algorithm": "dedoppler/search", "inputs": ["/x.h5"]},
                       headers=PAGE).status_code == 401


@pytest.mark.slow
def test_retry_and_resume_run_the_jobs_again(client, runner_bucket, tmp_path):
    store = client.app.state.web.jobs
    cid = store.create_campaign("energy_detection/preprocess_fine", [str(runner_bucket[2])],
                                bucket=str(tmp_path / "bucket"))
    (job,) = (j["id"] for j in store.list_jobs(cid))
    store.finish_job(job, "failed", error="a worker died")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post(f"/api/campaigns/{cid}/resume", headers=auth).json() == \
        {"campaign": cid, "action": "resume", "jobs": 0}   # nothing unfinished
    answer = client.post(f"/api/campaigns/{cid}/retry", headers=auth)
    assert answer.status_code == 200 and answer.json() == {"campaign": cid, "action": "retry", "jobs": 1}
    deadline = time.monotonic() + 300
    while store.get_job(job)["state"] not in ("succeeded", "skipped") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert store.get_job(job)["state"] == "succeeded" and store.get_job(job)["attempts"] == 1
    assert client.post(f"/api/campaigns/{cid}/restart", headers=auth).status_code == 422


def test_writes_off_and_the_page_says_how_to_get_the_buttons(runner_bucket, tmp_path, client):
    cid, _ = _campaign(client)
    page = client.get(f"/campaigns/{cid}").text
    assert f'href="/login?next=%2Fcampaigns%2F{cid}"' in page and 'data-enabled="0"' in page
    client.cookies.set("bl_token", TOKEN)
    page = client.get(f"/campaigns/{cid}").text
    assert 'data-enabled="1"' in page and not re.search(r'data-action="cancel"\s+disabled', page)
    with make_client(runner_bucket[0], tmp_path / "off.db", token="", index_on_start=False) as off:
        cid, _ = _campaign(off)
        assert off.post(f"/api/campaigns/{cid}/cancel", headers={"Authorization": "Bearer x"}).status_code == 403
        assert "this server has no token" in off.get(f"/campaigns/{cid}").text


def _read_events(response, out: list[dict], stop: threading.Event) -> None:
    data = ""
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            out.append({"bytes": len(data), **json.loads(data)})
            data = ""
        if stop.is_set():
            return


@pytest.mark.services
def test_the_campaign_stream_sends_what_changed_not_every_job(runner_bucket, tmp_path):
    """1,000 jobs, 10 of them end: the stream sends those 10 (was: all 1,000 again on every change)."""
    import httpx

    from bl_reservoir.web import create_app

    app = create_app(bucket=str(runner_bucket[0]), db=f"sqlite:///{tmp_path / 'store.db'}", token=TOKEN,
                     index_on_start=False)
    store = app.state.web.jobs
    cid = store.create_campaign("dedoppler/search", [f"/data/obs_{i:04d}.h5" for i in range(1000)], bucket="/b")
    jobs = [j["id"] for j in store.list_jobs(cid)]
    messages: list[dict] = []
    stop = threading.Event()
    with LiveServer(app) as server, httpx.Client(timeout=60) as http:
        with http.stream("GET", f"{server.url}/api/campaigns/{cid}/events") as response:
            reader = threading.Thread(target=_read_events, args=(response, messages, stop), daemon=True)
            reader.start()
            _wait(lambda: len(messages) >= 1)
            for job in jobs[100:110]:
                store.finish_job(job, "succeeded", n_hits=2, wall_seconds=1.0, finished=utcnow())
            _wait(lambda: sum(len(m["jobs"]) for m in messages[1:]) >= 10)
            time.sleep(1.5)   # three more polls: nothing new may be sent
            changed = messages[1:]
            store.cancel(cid)
            _wait(lambda: messages[-1]["state"] == "cancelled")
            stop.set()
    first = messages[0]
    assert first["full"] is True and len(first["jobs"]) == 1000 and first["counts"]["queued"] == 1000
    assert all(m["full"] is False for m in changed)
    assert sorted(j["id"] for m in changed for j in m["jobs"]) == sorted(jobs[100:110])
    assert changed[-1]["counts"]["succeeded"] == 10 and changed[-1]["progress"]["ended"] == 10
    assert sum(m["bytes"] for m in changed) < 15_000 < first["bytes"] / 10   # 10 jobs, not 1,000 again
    cancelled = [j for m in messages[len(changed) + 1:] for j in m["jobs"]]
    assert len(cancelled) == 990 and {j["state"] for j in cancelled} == {"cancelled"}


def _wait(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
