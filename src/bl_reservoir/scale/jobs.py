"""The job store: campaigns, their jobs, and each job's events (what happened, when, where).

The API others script against (the CLI and the web front end); rows come back as plain dicts:

    jobs = JobStore(url)                                 # None: settings.db_url()
    cid = jobs.create_campaign(alg, inputs, parameters=[...], bucket=uri, max_attempts=3)
    jobs.add_jobs(cid, inputs) -> [job ids]
    jobs.get_campaign(cid), jobs.list_campaigns(limit), jobs.campaign_counts(cid) -> {state: n}
    jobs.list_jobs(campaign=None, state=None, limit, offset), jobs.get_job(job_id)
    jobs.changed_jobs(cid, since, max_seq=None)          # rows whose `updated` is at or after `since`
    jobs.record_event(event) -> id                       # runner event dict {"event", "time", "job", ...}
    jobs.job_events(job_id, after_id=0, limit)           # events with id > after_id, oldest first
    jobs.start_attempt(job_id, worker), jobs.heartbeat(job_id), jobs.finish_job(job_id, state, ...)
    jobs.requeue(cid, states, lost=False) -> [jobs], jobs.cancel(cid) -> n, jobs.close_campaign(cid)

A running job's task refreshes its `updated` time every `HEARTBEAT_S`. A job `running` with no
heartbeat for `LOST_AFTER_S` (its worker killed, its submitter gone, the store out of reach) is
ended here: `failed`, "worker lost: no heartbeat since <time>", as every reader (status, the web,
the engine) lists it; `resume` runs such jobs again as it does running ones, `retry` too.

The hits index of the same database is `bl_reservoir.scale.index.HitIndex`.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from bl_reservoir.errors import UsageError
from bl_reservoir.results import to_jsonable, utc_text, utcnow
from bl_reservoir.scale import schema as t
from bl_reservoir.scale.database import Database, as_dict, as_dicts

#: Seconds between two heartbeats of a running job's task.
HEARTBEAT_S = 30.0
#: Seconds without a heartbeat after which a running job is failed as lost (many heartbeats: a busy store,
#: a slow network or a paused worker miss a few).
LOST_AFTER_S = 600.0
#: How the error of a job failed for lost heartbeats begins.
LOST = "worker lost: no heartbeat since"


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def _iso(seconds_ago: float) -> str:
    """`utcnow()`'s format `seconds_ago` seconds back: stored times compare as strings."""
    return utc_text(_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=seconds_ago))


class JobStore(Database):
    """Campaigns, jobs and job events of one database."""

    #: this handle's limit (seconds) on a running job's silence; `LOST_AFTER_S` unless set
    lost_after_s: float = LOST_AFTER_S

    # -- campaigns -------------------------------------------------------------------------

    def create_campaign(self, algorithm: str, inputs: Iterable[str], *, parameters: Sequence[str] = (),
                        bucket: str, max_attempts: int = 3, timeout_s: float | None = None,
                        max_result_bytes: int | None = None) -> str:
        """A new `active` campaign with one `queued` job per input, in one transaction; its id. `timeout_s`:
        how long one job may run, `max_result_bytes`: how much it may write (None: the runner's defaults)."""
        cid = _new_id()[:12]
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.campaigns).values(
                id=cid, algorithm=algorithm, parameters=list(parameters), bucket=bucket,
                max_attempts=int(max_attempts), created=utcnow(), state="active",
                timeout_s=None if timeout_s is None else float(timeout_s),
                max_result_bytes=None if max_result_bytes is None else int(max_result_bytes)))
            self._insert_jobs(conn, cid, list(inputs), start=0)
        return cid

    def add_jobs(self, campaign: str, inputs: Iterable[str]) -> list[str]:
        """Append queued jobs to a campaign; their ids, in input order."""
        with self.engine.begin() as conn:
            start = conn.execute(sa.select(sa.func.count()).where(t.jobs.c.campaign == campaign)).scalar()
            conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == campaign).values(state="active"))
            return self._insert_jobs(conn, campaign, list(inputs), start=int(start or 0))

    @staticmethod
    def _insert_jobs(conn: sa.Connection, campaign: str, inputs: list[str], start: int) -> list[str]:
        now = utcnow()
        rows = [{"id": _new_id(), "campaign": campaign, "seq": start + i, "input_uri": uri, "state": "queued",
                 "attempts": 0, "updated": now} for i, uri in enumerate(inputs)]
        if rows:
            conn.execute(sa.insert(t.jobs), rows)
        return [r["id"] for r in rows]

    def get_campaign(self, campaign: str) -> dict[str, Any]:
        """The campaign row; `UsageError` naming the id when there is none."""
        with self.engine.connect() as conn:
            row = as_dict(conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == campaign)).first())
        if row is None:
            raise UsageError(f"campaign {campaign}: no such campaign in {self.safe_url}")
        return row

    def list_campaigns(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Newest first, each with `counts` ({state: n})."""
        query = sa.select(t.campaigns).order_by(t.campaigns.c.created.desc()).limit(limit).offset(offset)
        self.end_lost()
        with self.engine.connect() as conn:
            rows = as_dicts(conn.execute(query))
            counts = self._counts(conn, [r["id"] for r in rows])
        for row in rows:
            row["counts"] = counts.get(row["id"], {})
        return rows

    def campaign_counts(self, campaign: str) -> dict[str, int]:
        """Number of jobs per state, every state present (zeros included)."""
        self.end_lost()
        with self.engine.connect() as conn:
            found = self._counts(conn, [campaign]).get(campaign, {})
        return {state: found.get(state, 0) for state in t.JOB_STATES}

    @staticmethod
    def _counts(conn: sa.Connection, ids: list[str]) -> dict[str, dict[str, int]]:
        query = (sa.select(t.jobs.c.campaign, t.jobs.c.state, sa.func.count())
                 .where(t.jobs.c.campaign.in_(ids)).group_by(t.jobs.c.campaign, t.jobs.c.state))
        out: dict[str, dict[str, int]] = {}
        for cid, state, n in conn.execute(query):
            out.setdefault(cid, {})[state] = int(n)
        return out

    def close_campaign(self, campaign: str) -> str:
        """Mark a campaign `finished` once no job is queued or running and no cadence's events stage is
        waiting, queued or running; returns its state."""
        with self.engine.begin() as conn:
            busy = conn.execute(sa.select(sa.func.count()).where(
                t.jobs.c.campaign == campaign, t.jobs.c.state.in_(t.ACTIVE))).scalar()
            busy += conn.execute(sa.select(sa.func.count()).where(
                t.cadences.c.campaign == campaign, t.cadences.c.state.in_(t.CADENCE_ACTIVE))).scalar()
            state = conn.execute(sa.select(t.campaigns.c.state).where(t.campaigns.c.id == campaign)).scalar()
            if not busy and state == "active":
                conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == campaign).values(state="finished"))
                state = "finished"
        return state

    # -- jobs ------------------------------------------------------------------------------

    def list_jobs(self, campaign: str | None = None, state: str | Sequence[str] | None = None,
                  limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Jobs in input order within a campaign, newest campaign first."""
        query = (sa.select(t.jobs).join(t.campaigns, t.campaigns.c.id == t.jobs.c.campaign)
                 .order_by(t.campaigns.c.created.desc(), t.jobs.c.campaign, t.jobs.c.seq).offset(offset))
        if campaign is not None:
            query = query.where(t.jobs.c.campaign == campaign)
        if state is not None:
            query = query.where(t.jobs.c.state.in_([state] if isinstance(state, str) else list(state)))
        if limit is not None:
            query = query.limit(limit)
        self.end_lost()
        with self.engine.connect() as conn:
            return as_dicts(conn.execute(query))

    def changed_jobs(self, campaign: str, since: str, max_seq: int | None = None) -> list[dict[str, Any]]:
        """Jobs of a campaign whose row changed at or after `since` (their `updated`, ISO 8601 UTC), in input
        order; with `max_seq`, only among its first `max_seq` jobs."""
        query = (sa.select(t.jobs).where(t.jobs.c.campaign == campaign, t.jobs.c.updated >= since)
                 .order_by(t.jobs.c.seq))
        if max_seq is not None:
            query = query.where(t.jobs.c.seq < max_seq)
        self.end_lost()
        with self.engine.connect() as conn:
            return as_dicts(conn.execute(query))

    def get_job(self, job_id: str) -> dict[str, Any]:
        """The job row; `UsageError` when there is none."""
        self.end_lost()
        with self.engine.connect() as conn:
            row = as_dict(conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).first())
        if row is None:
            raise UsageError(f"job {job_id}: no such job in {self.safe_url}")
        return row

    def start_attempt(self, job_id: str, worker: str | None = None, time: str | None = None) -> None:
        """One more attempt began on `worker`: attempts + 1, and `running` unless already finished."""
        time = time or utcnow()
        with self.engine.begin() as conn:   # `updated` by this clock, as heartbeats: the event's may be skewed
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id).values(
                attempts=t.jobs.c.attempts + 1, worker=worker, started=time, updated=utcnow()))
            # an attempt event can arrive after the job's outcome: never move a finished job back
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id, t.jobs.c.state == "queued")
                         .values(state="running"))

    def heartbeat(self, job_id: str) -> None:
        """A running job's task is alive: refresh its `updated` time (a job no longer running is left alone)."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id, t.jobs.c.state == "running")
                         .values(updated=utcnow()))

    def end_lost(self) -> int:
        """Fail every job `running` with no heartbeat for `lost_after_s` ("worker lost: no heartbeat since
        <time>"); how many. A late outcome of such a job still lands (`finish_job`)."""
        cutoff = _iso(self.lost_after_s)
        stale = (t.jobs.c.state == "running", t.jobs.c.updated < cutoff)
        with self.engine.connect() as conn:   # a read first: most calls find none, and take no write lock
            found = conn.execute(sa.select(t.jobs.c.id, t.jobs.c.updated).where(*stale)).all()
        if not found:
            return 0
        now = utcnow()
        with self.engine.begin() as conn:
            return sum(conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id, *stale).values(
                state="failed", error=f"{LOST} {last}", finished=now, updated=now)).rowcount for job_id, last in found)

    def finish_job(self, job_id: str, state: str, *, result_uri: str | None = None, n_hits: int | None = None,
                   wall_seconds: float | None = None, error: str | None = None,
                   finished: str | None = None) -> None:
        """Record a job's outcome (`succeeded`, `skipped`, `failed` or `cancelled`). A cancelled job stays
        cancelled: an outcome arriving after the cancel (a task that ended as it was stopped) is not recorded."""
        if state not in t.JOB_STATES:
            raise ValueError(f"unknown job state {state!r}")
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id, t.jobs.c.state != "cancelled").values(
                state=state, result_uri=result_uri, n_hits=n_hits, wall_seconds=wall_seconds, error=error,
                finished=finished or now, updated=now))

    def requeue(self, campaign: str, states: Sequence[str], *, lost: bool = False) -> list[dict[str, Any]]:
        """Put the campaign's jobs in `states` back to `queued` (error cleared), and with `lost` the jobs
        failed for lost heartbeats too; those jobs."""
        now = utcnow()
        chosen = t.jobs.c.state.in_(list(states))
        if lost:
            chosen = sa.or_(chosen, sa.and_(t.jobs.c.state == "failed", t.jobs.c.error.startswith(LOST)))
        with self.engine.begin() as conn:
            where = (t.jobs.c.campaign == campaign, chosen)
            ids = [r[0] for r in conn.execute(sa.select(t.jobs.c.id).where(*where))]
            conn.execute(sa.update(t.jobs).where(*where).values(state="queued", error=None, updated=now))
            conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == campaign).values(state="active"))
            return as_dicts(conn.execute(sa.select(t.jobs).where(t.jobs.c.id.in_(ids)).order_by(t.jobs.c.seq)))

    def cancel(self, campaign: str) -> int:
        """Cancel every queued or running job of a campaign, and fail its unfinished events stages; how many
        jobs were cancelled."""
        self.get_campaign(campaign)
        now = utcnow()
        with self.engine.begin() as conn:
            n = conn.execute(sa.update(t.jobs).where(
                t.jobs.c.campaign == campaign, t.jobs.c.state.in_(t.ACTIVE))
                .values(state="cancelled", finished=now, updated=now)).rowcount
            conn.execute(sa.update(t.cadences).where(
                t.cadences.c.campaign == campaign, t.cadences.c.state.in_(t.CADENCE_ACTIVE))
                .values(state="failed", error="the campaign was cancelled", updated=now))
            conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == campaign).values(state="cancelled"))
        return int(n)

    # -- events ----------------------------------------------------------------------------

    def record_event(self, event: Mapping[str, Any]) -> int:
        """Store one event dict (`event` kind, `time`, `job`, anything else as payload); its id."""
        body = to_jsonable(dict(event))
        job, kind, time = body.pop("job"), body.pop("event"), body.pop("time", None) or utcnow()
        with self.engine.begin() as conn:
            result = conn.execute(sa.insert(t.events).values(job=job, kind=kind, time=time, payload=body))
            return int(result.inserted_primary_key[0])

    def job_events(self, job_id: str, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Events of a job with id > `after_id`, oldest first (poll with the last id seen)."""
        query = (sa.select(t.events).where(t.events.c.job == job_id, t.events.c.id > after_id)
                 .order_by(t.events.c.id).limit(limit))
        with self.engine.connect() as conn:
            return as_dicts(conn.execute(query))

