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


def _fake_job(job_id: str, seconds: float) -> str:
    """What a job's task does, in small: start the algorithm's process in the job's scratch folder (the runner
    names it `job-<job id>-...`) and wait for it. The process burns one core for `seconds`."""
    import subprocess
    import sys
    import tempfile

    scratch = tempfile.mkdtemp(prefix=f"job-{job_id}-")
    burn = "import sys, time\nend = time.time() + float(sys.argv[1])\nblock = bytearray(64 << 20)\n" \
           "while time.time() < end: pass\n"
    subprocess.run([sys.executable, "-c", burn, str(seconds), f"{scratch}/out"], cwd=scratch, check=True)
    return job_id


def test_only_executing_jobs_are_current_with_their_processes_cpu_and_memory(runner_bucket, tmp_path):
    """One thread, two tasks: the second waits in the worker's queue and is no current job (the scheduler's
    processing() lists both); the running one shows the CPU and memory of the process it started."""
    import time

    from distributed import Client, LocalCluster

    from bl_reservoir.scale.tasks import task_key

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as dask_client, \
            make_client(runner_bucket[0], tmp_path / "store.db", index_on_start=False,
                        scheduler=cluster.scheduler_address) as c:
        store = c.app.state.web.jobs
        cid = store.create_campaign("dedoppler/search", ["/data/a.h5", "/data/b.h5"], bucket="/b")
        first, second = (j["id"] for j in store.list_jobs(cid))
        futures = [dask_client.submit(_fake_job, job, 6.0, key=task_key(job), pure=False) for job in (first, second)]
        deadline = time.monotonic() + 30
        while len(dask_client.processing().get(cluster.workers[0].address, ())) < 2 or not _started(first):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(1.0)
        c.get("/api/workers")
        time.sleep(1.0)    # CPU is measured between two looks
        (worker,) = c.get("/api/workers").json()["workers"]
        (job,) = worker["current_jobs"]
        assert job["id"] == first and job["input_uri"] == "/data/a.h5" and job["campaign"] == cid
        assert job["processes"] == 1 and job["cpu_percent"] > 50 and job["memory_bytes"] > 64 << 20
        assert worker["jobs_cpu_percent"] == job["cpu_percent"] and worker["jobs_memory_bytes"] == job["memory_bytes"]
        html = c.get("/workers").text
        assert "/data/a.h5" in html and "/data/b.h5" not in html and 'data-refresh-s="5"' in html
        dask_client.gather(futures)


def _started(job_id: str) -> bool:
    """Whether the process of the job's task has started (a child of this process, in its scratch folder)."""
    import psutil

    for proc in psutil.Process().children(recursive=True):
        try:
            if f"/job-{job_id}-" in " ".join(proc.cmdline()):
                return True
        except psutil.Error:
            continue
    return False
