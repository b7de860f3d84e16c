"""The Workers view against a real Dask scheduler on 127.0.0.1."""

from __future__ import annotations

import pytest
from _webapp import make_client


@pytest.fixture
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None, resources={"dedoppler": 1}) as running:
        yield running


def test_workers_of_a_scheduler(cluster, runner_bucket, tmp_path):
    with make_client(runner_bucket[0], tmp_path / "store.db", index_on_start=False,
                     scheduler=cluster.scheduler_address) as c:
        body = c.get("/api/workers").json()
        assert body["scheduler"] == cluster.scheduler_address and body["error"] is None
        (worker,) = body["workers"]
        assert worker["nthreads"] == 1 and worker["algorithms"] == ["dedoppler"]
        assert worker["memory_bytes"] > 0 and worker["memory_limit_bytes"] > 0 and worker["current_jobs"] == []
        html = c.get("/workers").text
        assert cluster.scheduler_address in html and "1 worker" in html and "idle" in html


def test_an_unreachable_scheduler_is_reported(runner_bucket, tmp_path):
    from _webapp import free_port

    with make_client(runner_bucket[0], tmp_path / "store.db", index_on_start=False,
                     scheduler=f"tcp://127.0.0.1:{free_port()}") as c:
        c.app.state.web.workers.timeout_s = 1.0
        body = c.get("/api/workers").json()
        assert body["workers"] == [] and body["error"].startswith("cannot reach the scheduler")
        assert "cannot reach the scheduler" in c.get("/workers").text
