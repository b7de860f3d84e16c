"""A campaign submitted through the API while its Dask scheduler is down: 503 with one line, nothing created."""

from __future__ import annotations

import time

from _webapp import TOKEN, free_port, make_client


def test_submit_while_the_scheduler_is_down_is_503_and_creates_nothing(runner_bucket, tmp_path):
    down = f"tcp://127.0.0.1:{free_port()}"   # nothing listens there: connections are refused
    with make_client(runner_bucket[0], tmp_path / "store.db", index_on_start=False, scheduler=down,
                     token=TOKEN) as client:
        client.app.state.web.submitter.connect_timeout_s = 2.0
        body = {"algorithm": "energy_detection/preprocess_fine", "inputs": [str(runner_bucket[2])],
                "bucket": str(tmp_path / "campaign-bucket")}
        started = time.monotonic()
        response = client.post("/api/jobs", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert time.monotonic() - started < 30
        assert response.status_code == 503, response.text
        detail = response.json()["detail"]
        assert detail.startswith(f"cannot reach the Dask scheduler at {down}: ") and "\n" not in detail
        assert client.get("/api/campaigns").json()["items"] == []   # no campaign that never runs
        assert client.get("/api/jobs").json()["items"] == []
