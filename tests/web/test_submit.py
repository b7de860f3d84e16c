"""A campaign submitted through the API runs to its end on a LocalCluster, and its results show up."""

from __future__ import annotations

import time

import pytest
from _webapp import OBS, TOKEN


@pytest.mark.slow
def test_submit_runs_a_campaign_to_the_end(client, runner_bucket, tmp_path):
    bucket = tmp_path / "campaign-bucket"
    body = {"algorithm": "energy_detection/preprocess_fine", "inputs": [str(runner_bucket[2])],
            "bucket": str(bucket), "parameters": ["--threshold", "2048"], "max_attempts": 2}
    response = client.post("/api/jobs", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 201, response.text
    cid, jobs = response.json()["campaign"], response.json()["jobs"]
    assert len(jobs) == 1

    deadline = time.monotonic() + 300
    while True:
        campaign = client.get(f"/api/campaigns/{cid}").json()
        if campaign["state"] != "active" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert campaign["state"] == "finished", campaign
    assert campaign["progress"] == {"total": 1, "ended": 1, "percent": 100.0}
    (job,) = campaign["jobs"]
    assert job["state"] == "succeeded" and job["attempts"] == 1 and job["worker"]
    assert job["result_uri"].endswith(f"/{OBS}/energy_detection/preprocess_fine")
    assert campaign["parameters"] == ["--threshold", "2048"] and campaign["bucket"] == str(bucket)

    detail = client.get(f"/api/jobs/{job['id']}").json()
    kinds = [e["kind"] for e in detail["events"]]
    assert "done" in kinds and isinstance(detail["log"], str)
    # the result was indexed and is read from the campaign's bucket
    assert (bucket / OBS / "energy_detection" / "preprocess_fine" / "manifest.json").is_file()
    hits = client.get(f"/api/observations/{OBS}/energy_detection/preprocess_fine/hits").json()
    assert hits["n_hits"] == job["n_hits"] > 0
    found = client.get(f"/api/observations/{OBS}").json()["results"]
    ed = next(r for r in found if r["algorithm"] == "energy_detection/preprocess_fine")
    assert ed["result_uri"].startswith(str(bucket))
