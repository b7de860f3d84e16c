"""Every job ends in a visible state: heartbeats and lost workers, a bug in a detached task, a campaign's
per-job timeout. Stores on SQLite and PostgreSQL; campaigns on real Dask schedulers in this process."""

from __future__ import annotations

import os
import time

import pytest
import sqlalchemy as sa
from conftest import SLOW_ALG, _wait_for, cli, runs_per_input

from bl_reservoir.errors import JobFailed
from bl_reservoir.scale import jobs as job_rules
from bl_reservoir.scale import schema as t
from bl_reservoir.scale import tasks
from bl_reservoir.scale.jobs import LOST, JobStore
from bl_reservoir.scale.schema import ACTIVE
from bl_reservoir.scale.tasks import JobSpec, run_task

LONG_AGO = "2026-01-01T00:00:00.000Z"


def _silent_since(store: JobStore, job_id: str, when: str) -> None:
    """Pretend the job's last heartbeat was at `when`."""
    with store.engine.begin() as conn:
        conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id).values(updated=when))


# ---- the store: heartbeats, and a running job whose heartbeats stopped --------------------------------------

def test_a_silent_running_job_reads_as_failed_and_resume_takes_it_back(store):
    cid = store.create_campaign("dedoppler/search", ["/d/a.h5", "/d/b.h5", "/d/c.h5"], bucket="/b")
    lost, alive, queued = (j["id"] for j in store.list_jobs(cid))
    store.start_attempt(lost, "tcp://127.0.0.1:1")
    store.start_attempt(alive, "tcp://127.0.0.1:2")
    _silent_since(store, lost, LONG_AGO)
    _silent_since(store, alive, LONG_AGO)
    store.heartbeat(alive)                       # its task is still there: now is its last heartbeat
    assert store.get_job(alive)["updated"] > LONG_AGO
    store.heartbeat(queued)                      # a heartbeat never starts a queued job
    assert store.get_job(queued)["state"] == "queued"

    # every reader sees the lost job ended: the job, the list, the counts
    job = store.get_job(lost)
    assert (job["state"], job["error"]) == ("failed", f"{LOST} {LONG_AGO}")
    assert job["error"] == "worker lost: no heartbeat since 2026-01-01T00:00:00.000Z"
    assert [j["state"] for j in store.list_jobs(cid)] == ["failed", "running", "queued"]
    assert store.campaign_counts(cid)["failed"] == 1
    # resume reruns it with the unfinished ones; retry would too (it is failed), a plain requeue of ACTIVE not
    assert [j["id"] for j in store.requeue(cid, ACTIVE, lost=True)] == [lost, alive, queued]
    assert store.get_job(lost)["error"] is None


def test_other_failures_are_not_taken_back_by_resume(store):
    cid = store.create_campaign("dedoppler/search", ["/d/a.h5"], bucket="/b")
    (job,) = store.list_jobs(cid)
    store.finish_job(job["id"], "failed", error="/d/a.h5: truncated")
    assert store.requeue(cid, ACTIVE, lost=True) == []


def test_a_late_outcome_of_a_lost_job_still_lands(store):
    cid = store.create_campaign("dedoppler/search", ["/d/a.h5"], bucket="/b")
    (job,) = store.list_jobs(cid)
    store.start_attempt(job["id"], "w")
    _silent_since(store, job["id"], LONG_AGO)
    assert store.get_job(job["id"])["state"] == "failed"
    store.finish_job(job["id"], "succeeded", result_uri="/b/a/dedoppler/search", n_hits=3)
    assert store.get_job(job["id"])["state"] == "succeeded"


def test_status_shows_a_lost_job_failed(tmp_path, capsys):
    from bl_reservoir.cli import main

    url = f"sqlite:///{tmp_path / 's.db'}"
    store = JobStore(url)
    cid = store.create_campaign("dedoppler/search", ["/d/a.h5"], bucket="/b")
    (job,) = store.list_jobs(cid)
    store.start_attempt(job["id"], "w")
    _silent_since(store, job["id"], LONG_AGO)
    assert main(["status", cid, "--db", url]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "failed" in out and "worker lost: no heartbeat since" in out


# ---- the task sends them ------------------------------------------------------------------------------

def test_a_running_task_refreshes_its_heartbeat(store_url, tmp_path, monkeypatch):
    """A detached task (it writes the store itself) whose job runs 1.2 s, with a heartbeat every 0.1 s."""
    from bl_reservoir import runner

    monkeypatch.setenv("BL_RESERVOIR_DB", store_url)
    monkeypatch.setattr(job_rules, "HEARTBEAT_S", 0.1)
    store = JobStore(store_url)
    cid = store.create_campaign(SLOW_ALG, ["/d/a.h5"], bucket=str(tmp_path / "b"))
    (job,) = store.list_jobs(cid)
    seen: list[str] = []

    def slow_job(*args, **kw):
        for _ in range(6):
            time.sleep(0.2)
            seen.append(store.get_job(job["id"])["updated"])
        raise JobFailed("/d/a.h5: done sampling")

    monkeypatch.setattr(runner, "run_job", slow_job)
    outcome = run_task(JobSpec(job["id"], cid, SLOW_ALG, "/d/a.h5", str(tmp_path / "b")), write_store=True)
    assert outcome.state == "failed" and store.get_job(job["id"])["error"] == "/d/a.h5: done sampling"
    assert len(set(seen)) >= 5, seen          # refreshed between every two samples
    assert seen == sorted(seen)
    assert not [e for e in store.job_events(job["id"]) if e["kind"] == tasks.HEARTBEAT]   # no event rows
    store.close()


def test_a_submitter_lands_heartbeats_from_the_event_log(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = JobStore(url)
    cid = store.create_campaign(SLOW_ALG, ["/d/a.h5"], bucket="/b")
    (job,) = store.list_jobs(cid)
    tasks.record(store, {"event": "attempt", "time": LONG_AGO, "job": job["id"], "worker": "w"})
    _silent_since(store, job["id"], LONG_AGO)
    tasks.record(store, {"event": tasks.HEARTBEAT, "time": LONG_AGO, "job": job["id"]})
    assert store.get_job(job["id"])["state"] == "running"
    assert [e["kind"] for e in store.job_events(job["id"])] == ["attempt"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_resume_reruns_a_job_lost_with_its_worker(scale_env, small_obs):
    """A campaign whose job was running on a worker that vanished (no heartbeat since), resumed on the
    embedded cluster: the job runs once more and succeeds."""
    path = str(small_obs("lost.h5")[0])
    store = JobStore(os.environ["BL_RESERVOIR_DB"])
    cid = store.create_campaign(SLOW_ALG, [path], bucket=str(scale_env / "bucket"))
    (job,) = store.list_jobs(cid)
    store.start_attempt(job["id"], "tcp://10.9.9.9:1234")
    _silent_since(store, job["id"], LONG_AGO)
    assert store.get_job(job["id"])["state"] == "failed"
    out = cli("resume", cid)
    assert out.returncode == 0, out.stderr[-3000:]
    job = store.get_job(job["id"])
    assert (job["state"], job["attempts"], job["error"]) == ("succeeded", 2, None)
    assert runs_per_input(scale_env) == {"lost.h5": 1}


# ---- a bug in a detached task -----------------------------------------------------------------------------

def test_a_bug_in_a_detached_task_fails_its_job_with_one_line(small_obs, tmp_path, monkeypatch):
    from distributed import LocalCluster

    from bl_reservoir import runner
    from bl_reservoir.scale import campaigns

    def broken(*args, **kw):
        raise RuntimeError("header went missing\nsecond line of a long message")

    monkeypatch.setattr(runner, "run_job", broken)
    monkeypatch.setenv("BL_RESERVOIR_DB", f"sqlite:///{tmp_path / 's.db'}")
    for name in ("BL_RESERVOIR_TLS_CA_FILE", "BL_RESERVOIR_TLS_CERT", "BL_RESERVOIR_TLS_KEY"):
        monkeypatch.delenv(name, raising=False)
    path = str(small_obs("x.h5")[0])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        cid, _ = campaigns.submit("energy_detection/preprocess_fine", [path], bucket=str(tmp_path / "b"),
                                  scheduler=cluster.scheduler_address, detach=True)
        store = JobStore(os.environ["BL_RESERVOIR_DB"])
        _wait_for(lambda: store.get_campaign(cid)["state"] == "finished", 60, "the detached campaign")
    (job,) = store.list_jobs(cid)
    assert (job["state"], job["error"]) == ("failed", f"{path}: internal error RuntimeError: header went missing")


# ---- a campaign's timeout per job ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(300)
def test_submit_timeout_is_kept_with_the_campaign_and_bounds_each_job(scale_env, small_obs):
    from bl_reservoir.runner import DEFAULT_TIMEOUT_S
    from bl_reservoir.scale.engine import _spec

    paths = [str(small_obs(f"t{i}.h5", seed=i + 1)[0]) for i in range(2)]
    started = time.monotonic()
    out = cli("submit", SLOW_ALG, *paths, "--timeout", "3", "--", "--seconds", "120")
    assert out.returncode == 8, out.stderr[-3000:]
    assert time.monotonic() - started < 100   # not the 120 s the algorithm asked for
    store = JobStore(os.environ["BL_RESERVOIR_DB"])
    (campaign,) = store.list_campaigns()
    assert campaign["timeout_s"] == 3.0
    for job in store.list_jobs(campaign["id"]):
        assert job["state"] == "failed" and job["error"].endswith("timed out after 3 s (killed)"), job["error"]
        assert _spec(campaign, job, False).timeout == 3.0
    # a campaign without one (or from before the column) runs with the runner's default
    assert _spec({**campaign, "timeout_s": None}, job, False).timeout == DEFAULT_TIMEOUT_S
    out = cli("submit", SLOW_ALG, paths[0], "--timeout", "0")
    assert out.returncode == 2 and out.stderr.strip() == "bl-reservoir: error: --timeout must be a positive " \
        "number of seconds, not 0"


def test_a_version_2_store_gains_the_timeout_and_result_size_columns(tmp_path):
    from bl_reservoir.scale.database import Database

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    old = sa.MetaData()
    sa.Table("campaigns", old, *[sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
                                 for c in t.campaigns.columns if c.name not in ("timeout_s", "max_result_bytes")])
    with engine.begin() as conn:
        old.create_all(conn)
        t.metadata.create_all(conn, tables=[t.schema_version, t.jobs, t.events])
        conn.execute(sa.insert(t.schema_version).values(version=2))
        conn.execute(sa.text("INSERT INTO campaigns (id, algorithm, parameters, bucket, max_attempts, created, state)"
                             " VALUES ('c1', 'a/b', '[]', '/b', 3, '2026-01-01', 'finished')"))
    Database(url).close()
    with engine.begin() as conn:
        assert t.current_version(conn) == t.VERSION == 3
        assert conn.execute(sa.text("SELECT timeout_s FROM campaigns WHERE id = 'c1'")).scalar() is None
    engine.dispose()
    old_campaign = JobStore(url).get_campaign("c1")
    assert old_campaign["timeout_s"] is None and old_campaign["max_result_bytes"] is None


def test_submit_max_result_size_is_kept_with_the_campaign_and_bounds_each_job(scale_env, small_obs):
    from bl_reservoir.runner import DEFAULT_MAX_RESULT_BYTES
    from bl_reservoir.scale.engine import _spec

    path = str(small_obs("big.h5", seed=1)[0])
    out = cli("submit", "energy_detection/preprocess_fine", path, "--max-result-size", "1kB", "--", "--threshold",
              "100")
    assert out.returncode == 8, out.stderr[-3000:]
    store = JobStore(os.environ["BL_RESERVOIR_DB"])
    (campaign,) = store.list_campaigns()
    assert campaign["max_result_bytes"] == 1000
    (job,) = store.list_jobs(campaign["id"])
    assert job["state"] == "failed" and "1,000 bytes (--max-result-size)" in job["error"], job["error"]
    assert _spec(campaign, job, False).max_result_bytes == 1000
    assert _spec({**campaign, "max_result_bytes": None}, job, False).max_result_bytes == DEFAULT_MAX_RESULT_BYTES
    out = cli("submit", "energy_detection/preprocess_fine", path, "--max-result-size", "0")
    assert out.returncode == 2 and "argument --max-result-size: '0': a size must be positive" in out.stderr
