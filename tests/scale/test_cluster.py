"""Campaigns on real Dask clusters: a worker SIGKILLed mid-job, a submitter killed and resumed,
the embedded LocalCluster with corrupt inputs and a retry. Jobs run `sleepy/peak` (a slow test
algorithm registered by entry point) through the real runner into a real bucket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SLOW_ALG, _wait_for, cli, runs_per_input

from bl_reservoir.results import read_results
from bl_reservoir.runner import STOP_POLL_S
from bl_reservoir.scale.index import HitIndex
from bl_reservoir.scale.jobs import JobStore
from bl_reservoir.scale.schema import ACTIVE

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.timeout(300)]


def _inputs(small_obs, n: int) -> list[str]:
    return [str(small_obs(f"obs{i}.h5", seed=i + 1)[0]) for i in range(n)]


def _submit(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bl_reservoir.cli", "submit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _assert_one_complete_result_each(jobs: list[dict], inputs: list[str], states=("succeeded",)) -> None:
    assert sorted(j["input_uri"] for j in jobs) == sorted(inputs)
    assert {j["state"] for j in jobs} <= set(states), [(j["input_uri"], j["state"], j["error"]) for j in jobs]
    assert len({j["result_uri"] for j in jobs}) == len(inputs)
    for job in jobs:
        result = read_results(job["result_uri"])
        assert result.manifest["input"]["uri"] == job["input_uri"]
        assert len(result.hits) == 2 and job["n_hits"] == 2   # one per coarse channel


def test_worker_killed_mid_job_is_retried_elsewhere(cluster, small_obs, scale_env):
    inputs = _inputs(small_obs, 6)
    w1, w2 = cluster.workers
    submitter = _submit(SLOW_ALG, *inputs, "--scheduler", cluster.address, "--", "--seconds", "2")
    store = JobStore(os.environ["BL_RESERVOIR_DB"])
    running_on_w1 = _wait_for(lambda: [j for j in store.list_jobs() if j["state"] == "running" and j["worker"] == w1],
                              120, "a job running on w1")
    cluster.kill(w1)
    out, err = submitter.communicate(timeout=240)
    assert submitter.returncode == 0, err[-3000:]
    jobs = store.list_jobs()
    _assert_one_complete_result_each(jobs, inputs)
    victim = store.get_job(running_on_w1[0]["id"])
    assert victim["attempts"] >= 2 and victim["worker"] == w2
    assert [e["payload"]["worker"] for e in store.job_events(victim["id"]) if e["kind"] == "attempt"][:2] == [w1, w2]
    for job in jobs:   # only jobs that had started on the killed worker ran twice
        started_on = [e["payload"]["worker"] for e in store.job_events(job["id"]) if e["kind"] == "attempt"]
        assert job["attempts"] == len(started_on) and started_on[-1] == job["worker"]
        assert job["attempts"] == (2 if w1 in started_on else 1)

    # with --max-attempts 1 a job whose worker dies fails, saying so, and submit exits non-zero
    w3 = cluster.add_worker("w3")
    cluster.kill(w2)
    submitter = _submit(SLOW_ALG, inputs[0], "--scheduler", cluster.address, "--max-attempts", "1", "--force",
                        "--", "--seconds", "2")
    doomed = _wait_for(lambda: [j for j in store.list_jobs(state="running") if j["worker"] == w3], 120,
                       "the job running on w3")
    cluster.kill(w3)
    out, err = submitter.communicate(timeout=120)
    assert submitter.returncode == 8, err[-3000:]
    failed = store.get_job(doomed[0]["id"])
    assert failed["state"] == "failed" and failed["error"] == f"{inputs[0]}: worker lost on each of 1 attempts"


def test_submitter_killed_then_resumed_runs_each_job_once(cluster, small_obs, scale_env):
    inputs = _inputs(small_obs, 6)
    # the original Docker CMD with no input joins as a worker for its algorithm only (DASK_SCHEDULER_ADDRESS)
    energy_only = cluster.add_worker("energy", argv=[sys.executable, "-m",
                                                     "bl_reservoir.energy_detection.energy_detection"])
    submitter = _submit(SLOW_ALG, *inputs, "--scheduler", cluster.address, "--", "--seconds", "2")
    store = JobStore(os.environ["BL_RESERVOIR_DB"])
    _wait_for(lambda: store.list_jobs(state="succeeded") and store.list_jobs(state="running"), 120,
              "one job done and one running")
    os.killpg(submitter.pid, signal.SIGKILL)
    submitter.communicate(timeout=60)  # reaps it and closes its pipes (left open, a ResourceWarning)
    campaign = store.list_campaigns()[0]["id"]
    unfinished = store.list_jobs(campaign, state=ACTIVE)
    assert unfinished, "the submitter was killed too late to test anything"
    out = cli("resume", campaign, "--scheduler", cluster.address)
    assert out.returncode == 0, out.stderr[-3000:]
    # a job its worker finished after the submitter died is `skipped` on resume: its result is there
    _assert_one_complete_result_each(store.list_jobs(campaign), inputs, states=("succeeded", "skipped"))
    assert runs_per_input(scale_env) == {f"obs{i}.h5": 1 for i in range(6)}
    assert store.get_campaign(campaign)["state"] == "finished"
    assert energy_only not in {j["worker"] for j in store.list_jobs(campaign)}   # resources kept jobs off it

    # detached: the id comes back at once; the tasks write the store themselves (all skipped: results exist)
    out = cli("submit", SLOW_ALG, *inputs, "--scheduler", cluster.address, "--detach", "--", "--seconds", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    detached = out.stdout.split()[-1]
    assert store.get_campaign(detached)["algorithm"] == SLOW_ALG
    _wait_for(lambda: store.get_campaign(detached)["state"] == "finished", 120, "the detached campaign")
    assert store.campaign_counts(detached)["skipped"] == 6


def test_embedded_cluster_corrupt_inputs_fail_then_retry_succeeds(small_obs, scale_env):
    inputs = _inputs(small_obs, 6)
    bad_h5, bad_fil = scale_env / "bad_a.h5", scale_env / "bad_b.fil"
    bad_h5.write_bytes(b"not an hdf5 file" * 64)
    bad_fil.write_bytes(b"HEADER_START garbage")
    out = cli("submit", SLOW_ALG, str(scale_env / "obs*.h5"), str(bad_h5), str(bad_fil))
    assert out.returncode == 8, out.stderr[-3000:]
    store = JobStore(os.environ["BL_RESERVOIR_DB"])
    campaign = store.list_campaigns()[0]["id"]
    assert f"campaign {campaign}: 8 jobs" in out.stdout
    jobs = {j["input_uri"]: j for j in store.list_jobs(campaign)}
    for bad in (bad_h5, bad_fil):
        assert jobs[str(bad)]["state"] == "failed" and jobs[str(bad)]["error"].startswith(str(bad))
    _assert_one_complete_result_each([jobs[uri] for uri in inputs], inputs)
    # the hits index was filled from the results: one hit per coarse channel of each observation
    index = HitIndex(store.url)
    assert index.count_observations() == 6
    assert len(index.query_hits(algorithm=SLOW_ALG, limit=1000)) == 12
    status = cli("status", campaign)
    assert status.returncode == 0 and "failed" in status.stdout and campaign in status.stdout

    small_obs("bad_a.h5", seed=7)   # repair both inputs, then retry the failed jobs
    small_obs("bad_b.fil", seed=8)
    out = cli("retry", campaign)
    assert out.returncode == 0, out.stderr[-3000:]
    assert store.campaign_counts(campaign)["succeeded"] == 8
    assert runs_per_input(scale_env)["obs0.h5"] == 1   # the retry left the good jobs alone


def test_cancel_stops_a_running_campaign(small_obs, scale_env):
    import threading

    from bl_reservoir.scale import campaigns
    from bl_reservoir.scale.engine import Engine

    inputs = _inputs(small_obs, 4)
    store = JobStore(os.environ["BL_RESERVOIR_DB"])
    done: dict = {}
    with Engine(n_workers=1) as engine:
        worker = threading.Thread(target=lambda: done.update(result=campaigns.submit(
            SLOW_ALG, inputs, options=["--seconds", "120"], engine=engine)))
        worker.start()
        _wait_for(lambda: runs_per_input(scale_env), 120, "a running algorithm")
        campaign = store.list_campaigns()[0]["id"]
        assert cli("cancel", campaign).returncode == 0
        worker.join(timeout=60)
        assert not worker.is_alive(), "submit did not return after the cancel"
        # the running job's algorithm is killed within the runner's poll, and uploads nothing
        pids = [int(line.split()[1]) for line in (scale_env / "runs.log").read_text().splitlines()]
        assert len(pids) == 1
        _wait_for(lambda: not _alive(pids[0]), 20, "the cancelled job's algorithm to be killed")
    counts = done["result"][1]
    assert counts["cancelled"] == 4 and counts["queued"] == counts["running"] == counts["succeeded"] == 0
    assert store.get_campaign(campaign)["state"] == "cancelled"
    time.sleep(2 * STOP_POLL_S)
    assert list((scale_env / "bucket").rglob("manifest.json")) == []
    assert [j["state"] for j in store.list_jobs(campaign)] == ["cancelled"] * 4


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (killed, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
