"""Cadence events at scale: a dedoppler campaign on a real Dask scheduler and two workers groups its
inputs into cadences, runs each complete cadence's events stage as one more task, writes the events
folder into the GCS emulator and the events into the store, and the web API serves them. A corrupt
file fails its own cadence's stage only."""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path

import pandas as pd
import pytest
from conftest import Cluster, _wait_for, cli

from bl_reservoir.scale.outcomes import Stores
from bl_reservoir.synth import Signal, make_cadence

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.timeout(400)]

WIDTH = 4096
ON_ONLY = Signal(1500, 0.3, 50.0, 4.0)
EVERYWHERE = Signal(3000, 0.0, 60.0, 6.0)   # interference: in every file, no drift


def _cadence(folder, target: str, offs: tuple[str, str, str], tstart: float, seed: int):
    paths, truth = make_cadence(folder, [(ON_ONLY, (0, 2, 4)), (EVERYWHERE, range(6))], coarse_channel_width=WIDTH,
                                target=target, off_sources=offs, tstart=tstart, seed=seed)
    return [str(p) for p in paths], truth


def _corrupt_data(path: str) -> None:
    """Overwrite the last chunk's bytes: the header still reads, the data does not."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size - 20000)
        f.write(b"\xff" * 20000)


def test_campaign_finds_events_per_cadence_into_gcs_and_the_web_serves_them(scale_env, gcs_env, tmp_path):
    a, truth_a = _cadence(tmp_path / "a", "HIP1", ("A1", "A2", "A3"), 60000.0, 1)
    b, _ = _cadence(tmp_path / "b", "HIP2", ("B1", "B2", "B3"), 60000.3, 2)
    c, _ = _cadence(tmp_path / "c", "HIP3", ("C1", "C2", "C3"), 60000.6, 3)
    _corrupt_data(c[3])
    inputs = [x for trio in zip(a, b, c) for x in trio]   # interleaved, as a campaign's list may be
    bucket = f"gs://{gcs_env.bucket}/{uuid.uuid4().hex[:8]}"
    cluster = Cluster(scale_env)   # started here, so the workers inherit the emulator's settings
    try:
        cluster.add_worker("w1")
        cluster.add_worker("w2")
        out = cli("submit", "dedoppler/search", *inputs, "--scheduler", cluster.address, "--bucket", bucket,
                  timeout=360)
    finally:
        cluster.close()
    assert out.returncode == 8, out.stderr[-3000:]   # one job failed: the corrupt file
    assert "cadence cadence_0_ON_HIP1: HIP1, 6 observations" in out.stdout
    assert "not in a cadence" not in out.stdout

    stores = Stores.open(os.environ["BL_RESERVOIR_DB"])
    rows = {r["id"]: r for r in stores.cadences.list_cadences()}
    assert sorted(rows) == ["cadence_0_ON_HIP1", "cadence_0_ON_HIP2", "cadence_0_ON_HIP3"]
    assert [rows[f"cadence_0_ON_HIP{k}"]["state"] for k in (1, 2, 3)] == ["succeeded", "succeeded", "failed"]
    assert rows["cadence_0_ON_HIP3"]["error"].startswith(f"{c[3]}: its dedoppler job failed (")
    assert "corrupt or truncated data" in rows["cadence_0_ON_HIP3"]["error"]
    campaign = stores.jobs.list_campaigns()[0]
    assert campaign["state"] == "finished"

    one = stores.cadences.get_cadence("cadence_0_ON_HIP1")
    assert [m["input_uri"] for m in one["members"]] == a and one["n_events"] == 1 and one["target"] == "HIP1"
    (event,) = one["events"]
    first = truth_a[(truth_a.file == 0) & (truth_a.drift_rate == ON_ONLY.drift_rate)].iloc[0]
    assert event["frequency_mhz"] == pytest.approx(first.freq_start, abs=3e-6)
    assert event["drift_rate"] == pytest.approx(ON_ONLY.drift_rate, abs=0.02) and event["n_ons"] == 3
    assert [(h["position"], h["obs_name"]) for h in event["hits"]] == [
        (0, "cadence_0_ON_HIP1"), (2, "cadence_2_ON_HIP1"), (4, "cadence_4_ON_HIP1")]
    hit_rows = {h["obs_name"]: h["row"] for h in event["hits"]}
    for hit in event["hits"]:   # each joined hit is that row of its observation's result
        found = stores.index.query_hits(observation=hit["obs_name"], algorithm="dedoppler/search", limit=100)
        assert [h["frequency_mhz"] for h in found if h["row"] == hit_rows[hit["obs_name"]]] == \
            [pytest.approx(hit["frequency_mhz"], abs=1e-6)]

    # the events folder in the bucket, manifest last
    import fsspec

    fs = fsspec.filesystem("gs", token="anon", endpoint_url=gcs_env.endpoint)
    folder = f"{bucket.removeprefix('gs://')}/cadences/cadence_0_ON_HIP1/events"
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(folder)) == [
        "event_000.png", "events.csv", "events.parquet", "manifest.json"]
    manifest = json.loads(fs.cat_file(f"{folder}/manifest.json"))
    assert manifest["n_events"] == 1 and [m["input"] for m in manifest["cadence"]["members"]] == a
    table = pd.read_parquet(io.BytesIO(fs.cat_file(f"{folder}/events.parquet")))
    assert sorted(table["status"]) == ["on_table_1", "on_table_2", "on_table_3"]
    assert fs.cat_file(f"{folder}/event_000.png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert not fs.exists(f"{bucket.removeprefix('gs://')}/cadences/cadence_0_ON_HIP3")

    # the web API serves them
    from fastapi.testclient import TestClient

    from bl_reservoir.web import create_app

    with TestClient(create_app(bucket=bucket, db=os.environ["BL_RESERVOIR_DB"], index_on_start=False)) as client:
        listed = client.get("/api/cadences").json()
        assert listed["total"] == 3
        assert {i["id"]: (i["n_files"], i["n_events"], i["state"]) for i in listed["items"]} == {
            "cadence_0_ON_HIP1": (6, 1, "succeeded"), "cadence_0_ON_HIP2": (6, 1, "succeeded"),
            "cadence_0_ON_HIP3": (6, None, "failed")}
        body = client.get("/api/cadences/cadence_0_ON_HIP1").json()
        assert [m["on"] for m in body["members"]] == [True, False, True, False, True, False]
        assert body["events"][0]["picture"] == "/api/cadences/cadence_0_ON_HIP1/events/0.png"
        png = client.get("/api/cadences/cadence_0_ON_HIP1/events/0.png")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content == fs.cat_file(f"{folder}/event_000.png")
        assert client.get("/api/cadences/cadence_0_ON_HIP1/events/7.png").status_code == 404
        assert client.get("/api/cadences/cadence_0_ON_HIP3/events/0.png").status_code == 404
        assert client.get("/api/cadences/..%2F..%2Fetc").status_code == 404
        page = client.get("/cadences/cadence_0_ON_HIP1").text
        assert "/observations/cadence_2_ON_HIP1/dedoppler/search/hits/" in page
        assert 'href="/cadences/cadence_0_ON_HIP1"' in client.get("/observations/cadence_1_OFF_A1").text

    # a server over a fresh store restores the cadences from their events folders in the bucket
    app = create_app(bucket=bucket, db=f"sqlite:///{tmp_path / 'fresh.db'}")
    with TestClient(app) as client:
        _wait_for(lambda: not app.state.web.indexing, 60, "the start-up index")
        listed = client.get("/api/cadences").json()
        assert {i["id"]: (i["n_events"], i["state"]) for i in listed["items"]} == {
            "cadence_0_ON_HIP1": (1, "succeeded"), "cadence_0_ON_HIP2": (1, "succeeded")}
        restored = client.get("/api/cadences/cadence_0_ON_HIP1").json()
        assert restored["target"] == "HIP1" and restored["events"][0]["hits"] == body["events"][0]["hits"]


def test_retry_reruns_a_failed_job_and_its_cadences_stage(scale_env, tmp_path):
    """On the embedded cluster: a corrupt file fails its job and so its cadence; once the file is good
    again, `retry` reruns that job and then the cadence's events stage; `status` shows the cadence."""
    from bl_reservoir.scale import campaigns

    paths, _ = _cadence(tmp_path / "a", "HIP1", ("A1", "A2", "A3"), 60000.0, 1)
    good = Path(paths[3]).read_bytes()
    _corrupt_data(paths[3])
    db = os.environ["BL_RESERVOIR_DB"]
    cid, counts = campaigns.submit("dedoppler/search", paths, db=db)
    assert counts["failed"] == 1 and counts["succeeded"] == 5
    stores = Stores.open(db)
    assert stores.cadences.get_cadence("cadence_0_ON_HIP1")["state"] == "failed"
    Path(paths[3]).write_bytes(good)
    counts = campaigns.retry(cid, db=db)
    assert counts["succeeded"] == 6 and counts["failed"] == 0
    row = stores.cadences.get_cadence("cadence_0_ON_HIP1")
    assert (row["state"], row["n_events"], row["error"]) == ("succeeded", 1, None)
    assert stores.jobs.get_campaign(cid)["state"] == "finished"
    out = cli("status", cid, "--db", db, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert "cadences of campaign" in out.stdout and "cadence_0_ON_HIP1" in out.stdout
    assert "1 cadence, 1 event" in out.stdout


def test_a_detached_campaign_runs_its_events_stage_from_the_workers(scale_env, tmp_path):
    """--detach: no submitter listens; the task whose job completes the cadence submits its events stage."""
    paths, _ = _cadence(tmp_path / "a", "HIP1", ("A1", "A2", "A3"), 60000.0, 1)
    cluster = Cluster(scale_env)
    try:
        cluster.add_worker("w1")
        cluster.add_worker("w2")
        out = cli("submit", "dedoppler/search", *paths, "--scheduler", cluster.address, "--detach")
        assert out.returncode == 0, out.stderr[-3000:]
        campaign = out.stdout.strip().splitlines()[-1]
        stores = Stores.open(os.environ["BL_RESERVOIR_DB"])
        _wait_for(lambda: stores.jobs.get_campaign(campaign)["state"] == "finished", 240, "the detached campaign")
    finally:
        cluster.close()
    row = stores.cadences.get_cadence("cadence_0_ON_HIP1")
    assert (row["state"], row["n_events"], row["campaign"]) == ("succeeded", 1, campaign)
    assert (Path(os.environ["BL_RESERVOIR_BUCKET"]) / "cadences" / "cadence_0_ON_HIP1" / "events" / "event_000.png"
            ).is_file()


def test_a_cadence_list_is_taken_as_given(scale_env, tmp_path):
    """`submit --cadence FILE` (six inputs a line, ON first) without other inputs: headers whose sources
    do not alternate (every file names the target) form no cadence, the list does."""
    from bl_reservoir.scale.event_stage import EventSettings, plan_cadences

    paths, _ = _cadence(tmp_path / "a", "HIP1", ("HIP1", "HIP1", "HIP1"), 60000.0, 1)
    found, refused = plan_cadences(paths, EventSettings())
    assert found == [] and "do not follow ON, OFF" in refused[0].reason
    listing = tmp_path / "cadences.txt"
    listing.write_text("# ON first, as find_event_pipeline takes it\n" + " ".join(paths) + "\n")
    out = cli("submit", "dedoppler/search", "--cadence", str(listing), env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "cadence cadence_0_ON_HIP1: HIP1, 6 observations" in out.stdout
    row = Stores.open(os.environ["BL_RESERVOIR_DB"]).cadences.get_cadence("cadence_0_ON_HIP1")
    assert (row["state"], row["n_events"], row["parameters"]["from"]) == ("succeeded", 1, "list")
    assert [m["input_uri"] for m in row["members"]] == paths
