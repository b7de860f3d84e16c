"""Campaign logic without a cluster: inputs, result names, how events and outcomes land in the store."""

from __future__ import annotations

import pandas as pd
import pytest

from bl_reservoir.errors import UsageError
from bl_reservoir.scale import campaigns
from bl_reservoir.scale.tasks import ATTEMPT, Outcome


def test_expand_inputs_paths_globs_uris_and_lists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("b.h5", "a.h5", "c.fil"):
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text("# inputs\ngs://bucket/x.h5\n\n c.fil \n")
    found = campaigns.expand_inputs(["*.h5", "s3://b/y.fil", f"@{listing}", "c.fil"])
    assert found == [str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "s3://b/y.fil", "gs://bucket/x.h5",
                     str(tmp_path / "c.fil"), str(tmp_path / "c.fil")]
    with pytest.raises(UsageError, match="nothing.h5: no such file"):
        campaigns.expand_inputs(["nothing.h5"])
    with pytest.raises(UsageError, match=r"\*.dat: no file matches"):
        campaigns.expand_inputs(["*.dat"])
    with pytest.raises(UsageError, match="missing.txt: cannot read the input list"):
        campaigns.expand_inputs(["@missing.txt"])


def test_obs_name_of_follows_the_bucket_layout():
    assert campaigns.obs_name_of("gs://b/GBT_58402_HIP65057_fine/energy_detection/preprocess_fine") == \
        "GBT_58402_HIP65057_fine"
    assert campaigns.obs_name_of("/data/bl-scale/obs1/dedoppler/search/") == "obs1"


def test_events_and_outcomes_update_jobs_and_index(store):
    cid = store.create_campaign("dedoppler/search", ["/d/obs1.h5", "/d/obs2.h5"], bucket="/b")
    first, second = (j["id"] for j in store.list_jobs(cid))
    campaigns.apply_event(store, {"event": ATTEMPT, "time": "2026-01-01T00:00:00.000Z", "job": first,
                                  "worker": "tcp://127.0.0.1:9"})
    campaigns.apply_event(store, {"event": "running", "time": "2026-01-01T00:00:01.000Z", "job": first})
    campaigns.apply_event(store, {"event": "running", "job": "not-a-job"})  # logged, not raised
    job = store.get_job(first)
    assert (job["state"], job["attempts"], job["worker"]) == ("running", 1, "tcp://127.0.0.1:9")
    hits = pd.DataFrame({"freqs": [1420.2, 1420.7], "drift_rate": [0.1, -0.2], "snr": [25.0, 12.0]})
    header = {"source_name": "VOYAGER1", "tstart": 59000.5, "fch1": 1421.0, "foff": -1e-3, "nchans": 1000}
    campaigns.apply_outcome(store, Outcome(first, "succeeded", "/b/obs1/dedoppler/search", 2, 1.5, header=header,
                                           hits=hits), "dedoppler/search")
    campaigns.apply_outcome(store, Outcome(second, "failed", error="/d/obs2.h5: truncated"), "dedoppler/search")
    assert store.get_job(first)["state"] == "succeeded" and store.get_job(first)["n_hits"] == 2
    assert store.get_job(second)["error"] == "/d/obs2.h5: truncated"
    assert [(h["observation"], h["snr"]) for h in store.query_hits(min_snr=20)] == [("obs1", 25.0)]
    assert store.get_observation("obs1")["source"] == "VOYAGER1"
    # a failure arriving after a cancellation keeps the job cancelled
    store.requeue(cid, ["failed"])
    store.cancel(cid)
    campaigns.apply_outcome(store, Outcome(second, "failed", error="late"), "dedoppler/search")
    assert store.get_job(second)["state"] == "cancelled"


def test_submit_checks_before_creating_anything(tmp_path, monkeypatch):
    monkeypatch.setenv("BL_RESERVOIR_DB", f"sqlite:///{tmp_path / 's.db'}")
    (tmp_path / "x.h5").write_bytes(b"x")
    with pytest.raises(UsageError, match="unknown algorithm 'nope/nope'"):
        campaigns.submit("nope/nope", [str(tmp_path / "x.h5")])
    with pytest.raises(UsageError, match="--max-attempts must be at least 1"):
        campaigns.submit("energy_detection/preprocess_fine", [str(tmp_path / "x.h5")], max_attempts=0)
    with pytest.raises(UsageError, match="--detach needs a running scheduler"):
        campaigns.submit("energy_detection/preprocess_fine", [str(tmp_path / "x.h5")], detach=True)


def test_a_job_goes_on_when_the_cancel_signal_is_out_of_reach(monkeypatch):
    # no scheduler here: a stand-in worker and an Event whose scheduler refuses the connection
    import distributed

    from bl_reservoir.scale import tasks

    class Unreachable:
        def is_set(self) -> bool:
            raise OSError("connection refused")

    class Set:
        def is_set(self) -> bool:
            return True

    monkeypatch.setattr(distributed, "get_worker", lambda: object())
    monkeypatch.setattr(tasks, "cancel_event", lambda campaign, client=None: Unreachable())
    assert tasks._cancelled_check("c1")() is False
    monkeypatch.setattr(tasks, "cancel_event", lambda campaign, client=None: Set())
    assert tasks._cancelled_check("c1")() is True
    monkeypatch.undo()
    assert tasks._cancelled_check("c1") is None  # outside a Dask worker there is nothing to check
