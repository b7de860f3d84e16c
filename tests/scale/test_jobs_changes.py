"""JobStore for the campaign page: a cancelled job stays cancelled, and the rows that changed since a time."""

from __future__ import annotations

import time

from bl_reservoir.results import utcnow
from bl_reservoir.scale.jobs import JobStore


def test_a_late_outcome_never_turns_a_cancelled_job_into_a_success(store_url):
    store = JobStore(store_url)
    cid = store.create_campaign("dedoppler/search", ["/d/a.h5", "/d/b.h5"], bucket="/b")
    a, b = (j["id"] for j in store.list_jobs(cid))
    store.start_attempt(a, "tcp://w:1")
    assert store.cancel(cid) == 2
    # the task had finished its upload as the cancel came: its outcome arrives afterwards
    store.finish_job(a, "succeeded", result_uri="/b/a/dedoppler/search", n_hits=3, wall_seconds=2.0)
    store.finish_job(b, "failed", error="stopped")
    assert [(j["state"], j["result_uri"], j["error"]) for j in store.list_jobs(cid)] == \
        [("cancelled", None, None), ("cancelled", None, None)]
    assert store.campaign_counts(cid)["cancelled"] == 2 and store.campaign_counts(cid)["succeeded"] == 0
    # a job not cancelled still finishes as before
    other = store.create_campaign("dedoppler/search", ["/d/c.h5"], bucket="/b")
    (c,) = (j["id"] for j in store.list_jobs(other))
    store.finish_job(c, "succeeded", n_hits=1)
    assert store.get_job(c)["state"] == "succeeded"
    store.close()


def test_changed_jobs_since_a_time(store_url):
    store = JobStore(store_url)
    cid = store.create_campaign("dedoppler/search", [f"/d/{i}.h5" for i in range(5)], bucket="/b")
    jobs = [j["id"] for j in store.list_jobs(cid)]
    time.sleep(0.01)
    since = utcnow()
    time.sleep(0.01)
    store.finish_job(jobs[3], "succeeded", n_hits=1)
    store.finish_job(jobs[1], "failed", error="x")
    assert [j["id"] for j in store.changed_jobs(cid, since)] == [jobs[1], jobs[3]]   # input order
    assert [j["id"] for j in store.changed_jobs(cid, since, max_seq=2)] == [jobs[1]]
    assert len(store.changed_jobs(cid, "")) == 5
    store.close()
