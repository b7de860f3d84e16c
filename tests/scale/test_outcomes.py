"""How a task's events and outcomes land in the job store and the hits index."""

from __future__ import annotations

import pandas as pd

from bl_reservoir.scale import outcomes
from bl_reservoir.scale.cadences import CadenceStore
from bl_reservoir.scale.outcomes import ATTEMPT, Outcome, Stores


def test_obs_name_of_follows_the_bucket_layout():
    assert outcomes.obs_name_of("gs://b/GBT_58402_HIP65057_fine/energy_detection/preprocess_fine") == \
        "GBT_58402_HIP65057_fine"
    assert outcomes.obs_name_of("/data/bl-scale/obs1/dedoppler/search/") == "obs1"


def test_events_and_outcomes_update_jobs_and_index(store, index):
    stores = Stores(store, index, CadenceStore(share=store))
    cid = store.create_campaign("dedoppler/search", ["/d/obs1.h5", "/d/obs2.h5"], bucket="/b")
    first, second = (j["id"] for j in store.list_jobs(cid))
    outcomes.apply_event(store, {"event": ATTEMPT, "time": "2026-01-01T00:00:00.000Z", "job": first,
                                  "worker": "tcp://127.0.0.1:9"})
    outcomes.apply_event(store, {"event": "running", "time": "2026-01-01T00:00:01.000Z", "job": first})
    outcomes.apply_event(store, {"event": "running", "job": "not-a-job"})  # logged, not raised
    job = store.get_job(first)
    assert (job["state"], job["attempts"], job["worker"]) == ("running", 1, "tcp://127.0.0.1:9")
    hits = pd.DataFrame({"freqs": [1420.2, 1420.7], "drift_rate": [0.1, -0.2], "snr": [25.0, 12.0]})
    header = {"source_name": "VOYAGER1", "tstart": 59000.5, "fch1": 1421.0, "foff": -1e-3, "nchans": 1000}
    outcomes.apply_outcome(stores, Outcome(first, "succeeded", "/b/obs1/dedoppler/search", 2, 1.5, header=header,
                                           hits=hits), "dedoppler/search")
    outcomes.apply_outcome(stores, Outcome(second, "failed", error="/d/obs2.h5: truncated"), "dedoppler/search")
    assert store.get_job(first)["state"] == "succeeded" and store.get_job(first)["n_hits"] == 2
    assert store.get_job(second)["error"] == "/d/obs2.h5: truncated"
    assert [(h["observation"], h["snr"]) for h in index.query_hits(min_snr=20)] == [("obs1", 25.0)]
    assert index.get_observation("obs1")["source"] == "VOYAGER1"
    # a failure arriving after a cancellation keeps the job cancelled
    store.requeue(cid, ["failed"])
    store.cancel(cid)
    outcomes.apply_outcome(stores, Outcome(second, "failed", error="late"), "dedoppler/search")
    assert store.get_job(second)["state"] == "cancelled"
