"""The job store against SQLite and PostgreSQL: campaigns, job states, events."""

from __future__ import annotations

import pytest

from bl_reservoir.errors import UsageError


def _campaign(store, n=3):
    return store.create_campaign("energy_detection/preprocess_fine", [f"/data/obs{i}.h5" for i in range(n)],
                                 parameters=["--threshold", "100"], bucket="/tmp/bucket", max_attempts=3)


def test_campaign_with_jobs_in_input_order(store):
    cid = _campaign(store)
    campaign = store.get_campaign(cid)
    assert campaign["algorithm"] == "energy_detection/preprocess_fine"
    assert campaign["parameters"] == ["--threshold", "100"]
    assert campaign["state"] == "active" and campaign["max_attempts"] == 3
    jobs = store.list_jobs(cid)
    assert [j["input_uri"] for j in jobs] == ["/data/obs0.h5", "/data/obs1.h5", "/data/obs2.h5"]
    assert {j["state"] for j in jobs} == {"queued"} and {j["attempts"] for j in jobs} == {0}
    assert store.campaign_counts(cid) == {"queued": 3, "running": 0, "succeeded": 0, "failed": 0,
                                          "skipped": 0, "cancelled": 0}
    added = store.add_jobs(cid, ["/data/obs3.h5"])
    assert store.get_job(added[0])["seq"] == 3


def test_attempts_states_and_closing(store):
    cid = _campaign(store, 2)
    a, b = (j["id"] for j in store.list_jobs(cid))
    store.start_attempt(a, "tcp://127.0.0.1:1")
    store.start_attempt(a, "tcp://127.0.0.1:2")
    job = store.get_job(a)
    assert (job["state"], job["attempts"], job["worker"]) == ("running", 2, "tcp://127.0.0.1:2")
    store.finish_job(a, "succeeded", result_uri="/tmp/bucket/obs0/x/y", n_hits=4, wall_seconds=1.5)
    store.start_attempt(a, "late")  # an attempt event arriving after the outcome keeps the outcome
    assert store.get_job(a)["state"] == "succeeded"
    assert store.close_campaign(cid) == "active"  # b is still queued
    store.finish_job(b, "failed", error="obs1.h5: not a filterbank file")
    assert store.close_campaign(cid) == "finished"
    requeued = store.requeue(cid, ["failed"])
    assert [j["id"] for j in requeued] == [b]
    assert store.get_job(b)["state"] == "queued" and store.get_job(b)["error"] is None
    assert store.get_campaign(cid)["state"] == "active"
    assert store.cancel(cid) == 1
    assert store.get_job(b)["state"] == "cancelled" and store.get_job(a)["state"] == "succeeded"
    assert store.get_campaign(cid)["state"] == "cancelled"
    with pytest.raises(ValueError):
        store.finish_job(a, "exploded")


def test_unknown_ids_raise_usage_errors(store):
    with pytest.raises(UsageError, match="campaign nope"):
        store.get_campaign("nope")
    with pytest.raises(UsageError, match="job nope"):
        store.get_job("nope")


def test_events_poll_after_id(store):
    job = store.list_jobs(_campaign(store, 1))[0]["id"]
    first = store.record_event({"event": "fetched", "time": "2026-01-01T00:00:00.000Z", "job": job,
                                "size_bytes": 1024})
    store.record_event({"event": "succeeded", "time": "2026-01-01T00:00:01.000Z", "job": job, "n_hits": 3})
    events = store.job_events(job)
    assert [(e["kind"], e["payload"]) for e in events] == [("fetched", {"size_bytes": 1024}),
                                                          ("succeeded", {"n_hits": 3})]
    assert [e["kind"] for e in store.job_events(job, after_id=first)] == ["succeeded"]


def test_list_campaigns_newest_first_with_counts(store):
    first, second = _campaign(store, 1), _campaign(store, 2)
    listed = store.list_campaigns()
    assert [c["id"] for c in listed] == [second, first]
    assert listed[0]["counts"] == {"queued": 2}


def test_jobs_of_the_newest_campaign_come_first(store):
    import time

    old = store.create_campaign("a/b", ["/d/1.h5", "/d/2.h5"], bucket="/b")
    time.sleep(0.01)   # `created` has millisecond resolution
    new = store.create_campaign("a/b", ["/d/3.h5"], bucket="/b")
    assert [(j["campaign"], j["input_uri"]) for j in store.list_jobs()] == [
        (new, "/d/3.h5"), (old, "/d/1.h5"), (old, "/d/2.h5")]
