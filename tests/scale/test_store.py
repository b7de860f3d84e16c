"""The job store against SQLite and PostgreSQL: campaigns, job states, events, the hits index."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from bl_reservoir.errors import UsageError
from bl_reservoir.scale import schema
from bl_reservoir.scale.store import Store, band_of

HEADER = {"source_name": "HIP65057", "tstart": 58402.78, "fch1": 1420.8, "foff": -2.7939677238464355e-6,
          "nchans": 262144}


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


def test_hits_index_query_across_observations(store):
    names = ["GBT_A_ON", "GBT_B_OFF", "GBT_C_ON"]
    for k, name in enumerate(names):
        hits = pd.DataFrame({"index": [10, 20, 30], "freqs": [1420.1 + k * 0.25, 1420.4, 1421.0],
                             "coarse_channel": [0, 0, 1], "drift_rate": [0.5, -1.0, 2.0],
                             "snr": [35.0, 12.0, 50.0 + k]})
        assert store.index_result(None, name, "dedoppler/search", f"/b/{name}/dedoppler/search",
                                  {**HEADER, "source_name": f"SRC{k}"}, hits) == 3
    energy = pd.DataFrame({"index": [5], "freqs": [1420.25], "coarse_channel": [0], "statistic": [4000.0],
                           "pvalue": [1e-30]})
    store.index_result(None, "GBT_A_ON", "energy_detection/preprocess_fine",
                       "/b/GBT_A_ON/energy_detection/preprocess_fine", HEADER, energy)
    found = store.query_hits(fmin=1420.0, fmax=1420.5, min_snr=30)
    assert [(h["observation"], h["frequency_mhz"], h["row"]) for h in found] == [
        ("GBT_A_ON", 1420.1, 0), ("GBT_B_OFF", pytest.approx(1420.35), 0)]
    assert found[0]["drift_rate"] == 0.5 and found[0]["result_uri"] == "/b/GBT_A_ON/dedoppler/search"
    assert [h["statistic"] for h in store.query_hits(min_statistic=1000)] == [4000.0]
    assert len(store.query_hits(drift_min=1.0)) == 3
    assert len(store.query_hits(observation="GBT_C_ON", limit=2)) == 2
    assert len(store.query_hits(observation="GBT_C_ON", limit=2, offset=2)) == 1
    # re-indexing the same folder replaces its rows rather than doubling them
    store.index_result(None, "GBT_A_ON", "energy_detection/preprocess_fine",
                       "/b/GBT_A_ON/energy_detection/preprocess_fine", HEADER, energy)
    assert len(store.query_hits(algorithm="energy_detection/preprocess_fine")) == 1


def test_observations_table(store):
    hits = pd.DataFrame({"index": [1, 2], "freqs": [1420.2, 1420.3], "coarse_channel": [0, 0]})
    headers = {name: {**HEADER, "tstart": 58000.0 + k, "source_name": "VOYAGER" if k == 1 else "HIP1"}
               for k, name in enumerate(["b_obs", "a_obs", "c_obs"])}
    for k, name in enumerate(headers):
        store.index_result(None, name, "energy_detection/preprocess_fine", f"/b/{name}/e/p", headers[name],
                           hits.iloc[: k + 1] if k < 2 else hits)
    store.index_result(None, "a_obs", "dedoppler/search", "/b/a_obs/d/s", headers["a_obs"], hits)
    listed = store.list_observations()
    assert [o["obs_name"] for o in listed] == ["a_obs", "b_obs", "c_obs"]
    a = listed[0]
    assert a["algorithms"] == ["dedoppler/search", "energy_detection/preprocess_fine"]
    assert a["hits"] == {"dedoppler/search": 2, "energy_detection/preprocess_fine": 2} and a["n_hits"] == 4
    assert a["band"] == "L" and a["fmax_mhz"] == pytest.approx(1420.8)
    assert a["fmin_mhz"] == pytest.approx(1420.8 - 2.7939677238464355e-6 * 262144)
    assert [o["obs_name"] for o in store.list_observations(sort="mjd", descending=True)] == ["c_obs", "a_obs", "b_obs"]
    assert [o["obs_name"] for o in store.list_observations(search="voyager")] == ["a_obs"]
    assert store.count_observations() == 3 and store.count_observations("hip") == 2
    assert [o["obs_name"] for o in store.list_observations(limit=1, offset=1)] == ["b_obs"]
    detail = store.get_observation("a_obs")
    assert detail["source"] == "VOYAGER" and detail["mjd"] == 58001.0 and len(detail["results"]) == 2
    assert store.get_observation("missing") is None
    with pytest.raises(UsageError, match="sort must be one of"):
        store.list_observations(sort="drop table")


def test_schema_version_and_migration_on_start(store_url):
    Store(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        assert schema.current_version(conn) == schema.VERSION
        conn.execute(sa.update(schema.schema_version).values(version=schema.VERSION + 5))
    with pytest.raises(UsageError, match="newer than this bl-reservoir"):
        Store(store_url)
    engine.dispose()


def test_bad_url_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="job store"):
        Store("nosuchdialect://x")
    with pytest.raises(UsageError, match="cannot open the job store"):
        Store(f"sqlite:///{tmp_path}/missing/dir/x.db")


def test_band_of():
    assert band_of(1100.0, 1900.0) == "L" and band_of(4000.0, 7800.0) == "C" and band_of(None, 1.0) is None


def test_jobs_of_the_newest_campaign_come_first(store):
    import time

    old = store.create_campaign("a/b", ["/d/1.h5", "/d/2.h5"], bucket="/b")
    time.sleep(0.01)   # `created` has millisecond resolution
    new = store.create_campaign("a/b", ["/d/3.h5"], bucket="/b")
    assert [(j["campaign"], j["input_uri"]) for j in store.list_jobs()] == [
        (new, "/d/3.h5"), (old, "/d/1.h5"), (old, "/d/2.h5")]
    with pytest.raises(UsageError, match="cannot open the job store") as refused:
        Store("postgresql+psycopg://u:secret@127.0.0.1:1/x")
    assert "secret" not in str(refused.value) and "***" in str(refused.value)
