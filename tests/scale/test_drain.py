"""SIGTERM drains a `bl-reservoir worker`: its running job finishes there (once), no new job starts there,
and the rest run on the other worker. A real scheduler and two worker processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from conftest import SLOW_ALG, _wait_for, runs_per_input

from bl_reservoir.results import utcnow
from bl_reservoir.scale.jobs import JobStore

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.timeout(300)]


def test_sigterm_lets_the_running_job_finish_and_sends_the_rest_elsewhere(cluster, small_obs, scale_env):
    inputs = [str(small_obs(f"obs{i}.h5", seed=i + 1)[0]) for i in range(4)]
    w1, w2 = cluster.workers
    submitter = subprocess.Popen([sys.executable, "-m", "bl_reservoir.cli", "submit", SLOW_ALG, *inputs,
                                  "--scheduler", cluster.address, "--", "--seconds", "6"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    store = JobStore(os.environ["BL_RESERVOIR_DB"])
    (victim,) = _wait_for(lambda: [j for j in store.list_jobs(state="running") if j["worker"] == w1], 120,
                          "a job running on w1")[:1]
    signalled = utcnow()
    os.kill(cluster.workers[w1].pid, signal.SIGTERM)   # what the kubelet sends first (not the algorithm's group)
    out, err = submitter.communicate(timeout=240)
    assert submitter.returncode == 0, err[-3000:]

    victim = store.get_job(victim["id"])
    assert (victim["state"], victim["attempts"], victim["worker"]) == ("succeeded", 1, w1)
    assert runs_per_input(scale_env) == {f"obs{i}.h5": 1 for i in range(4)}   # each ran once, the victim too
    for job in store.list_jobs():
        assert job["state"] == "succeeded" and job["attempts"] == 1
        started = [e for e in store.job_events(job["id"]) if e["kind"] == "attempt"]
        if started[0]["time"] > signalled:     # every job started after the SIGTERM ran on the other worker
            assert job["worker"] == w2, job
    assert any(e["time"] > signalled for j in store.list_jobs() for e in store.job_events(j["id"])
               if e["kind"] == "attempt"), "no job was left to start after the SIGTERM"
    # the drained worker left by itself once its job was done
    assert cluster.workers[w1].wait(timeout=60) == 0
