"""The cadence store against SQLite and PostgreSQL: cadences wait for their jobs, each ready stage is
handed out once, a failed job fails its cadence, events replace earlier ones, cancel and close."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bl_reservoir.io.cadence import Cadence, ObservationSummary
from bl_reservoir.scale.cadences import CadenceStore


def _cadence(target: str, t0: float) -> Cadence:
    sources = [target, "B", target, "C", target, "D"]
    return Cadence(tuple(ObservationSummary(f"/d/{target}_{k}.h5", s, t0 + k * 0.004, 1100.0, 1200.0, 292.0)
                         for k, s in enumerate(sources)))


@pytest.fixture
def cadences(store):
    handle = CadenceStore(share=store)
    return handle


def _campaign(store, cadences, *found: Cadence):
    inputs = [key for c in found for key in c.keys]
    cid = store.create_campaign("dedoppler/search", inputs, bucket="/b")
    jobs = {j["input_uri"]: j["id"] for j in store.list_jobs(cid)}
    cadences.add(cid, "/b", found, jobs=jobs, parameters={"filter_threshold": 3})
    return cid, jobs


def _event(n: int, freq: float) -> dict:
    return {"n": n, "frequency_mhz": freq, "drift_rate": 0.3, "snr": 40.0, "n_ons": 3, "picture": f"event_{n:03d}.png",
            "hits": [{"position": p, "obs_name": f"HIP1_{p}", "row": 7, "frequency_mhz": freq, "drift_rate": 0.3,
                      "snr": 40.0} for p in (0, 2, 4)]}


def test_a_cadence_waits_for_its_six_jobs_and_is_handed_out_once(store, cadences):
    one, two = _cadence("HIP1", 60000.0), _cadence("HIP2", 60000.5)
    cid, jobs = _campaign(store, cadences, one, two)
    row = cadences.get_cadence("HIP1_0")
    assert (row["state"], row["target"], row["band"], row["mjd"]) == ("waiting", "HIP1", "L", 60000.0)
    assert [(m["position"], m["on"], m["job"]) for m in row["members"]] == [
        (k, k % 2 == 0, jobs[f"/d/HIP1_{k}.h5"]) for k in range(6)]
    for key in one.keys[:5]:
        store.finish_job(jobs[key], "succeeded", result_uri=f"/b/{key}")
    assert cadences.settle(cid) == []
    store.finish_job(jobs[one.keys[5]], "skipped", result_uri="/b/x")   # a complete result counts
    with ThreadPoolExecutor(4) as pool:   # four submitters at once: one gets it
        claimed = list(pool.map(lambda _: cadences.settle(cid), range(4)))
    assert sorted(claimed) == [[], [], [], ["HIP1_0"]]
    assert cadences.get_cadence("HIP1_0")["state"] == "queued"
    assert store.close_campaign(cid) == "active"   # HIP2's jobs and HIP1's stage are not done


def test_a_failed_job_fails_its_cadence_saying_which(store, cadences):
    one = _cadence("HIP1", 60000.0)
    cid, jobs = _campaign(store, cadences, one)
    for key in one.keys:
        store.finish_job(jobs[key], "succeeded", result_uri=f"/b/{key}")
    store.finish_job(jobs[one.keys[3]], "failed", error="/d/HIP1_3.h5: truncated")
    assert cadences.settle(cid) == []
    row = cadences.get_cadence("HIP1_0")
    assert row["state"] == "failed" and row["error"] == "/d/HIP1_3.h5: its dedoppler job failed (/d/HIP1_3.h5: truncated)"
    assert store.close_campaign(cid) == "finished"
    assert cadences.requeue(cid, ["failed"]) == 1 and cadences.get_cadence("HIP1_0")["state"] == "waiting"


def test_events_are_recorded_and_replaced(store, cadences):
    one = _cadence("HIP1", 60000.0)
    cid, _ = _campaign(store, cadences, one)
    cadences.start("HIP1_0")
    cadences.finish("HIP1_0", "succeeded", n_events=2, events_uri="/b/cadences/HIP1_0/events",
                    events=[_event(0, 1150.1), _event(1, 1150.2)])
    row = cadences.get_cadence("HIP1_0")
    assert row["n_events"] == 2 and [e["frequency_mhz"] for e in row["events"]] == [1150.1, 1150.2]
    assert [(h["position"], h["row"]) for h in row["events"][1]["hits"]] == [(0, 7), (2, 7), (4, 7)]
    cadences.finish("HIP1_0", "succeeded", n_events=1, events_uri="/b/cadences/HIP1_0/events",
                    events=[_event(0, 1150.3)])
    assert [e["frequency_mhz"] for e in cadences.get_cadence("HIP1_0")["events"]] == [1150.3]
    assert cadences.of_observation("HIP1_2") == ["HIP1_0"] and cadences.of_observation("B") == []
    listed = cadences.list_cadences(campaign=cid)
    assert [(c["id"], c["n_files"], c["n_events"]) for c in listed] == [("HIP1_0", 6, 1)]
    # a new campaign over the same cadence takes it over and drops its old events
    cid2, _ = _campaign(store, cadences, one)
    row = cadences.get_cadence("HIP1_0")
    assert (row["campaign"], row["state"], row["events"]) == (cid2, "waiting", [])
    with pytest.raises(ValueError):
        cadences.finish("HIP1_0", "exploded")


def test_cancel_fails_the_unfinished_stages(store, cadences):
    cid, _ = _campaign(store, cadences, _cadence("HIP1", 60000.0))
    store.cancel(cid)
    row = cadences.get_cadence("HIP1_0")
    assert (row["state"], row["error"]) == ("failed", "the campaign was cancelled")
