"""Campaigns from the web: submitting, cancelling, retrying and resuming them, and their progress.

The web tier never runs an algorithm. With a Dask scheduler configured, jobs are handed to it
and left there (`detach`: their tasks write the store themselves); a scheduler that does not
answer within `connect_timeout_s` refuses the submission (`SchedulerUnreachable`, a 503) before
any campaign exists. Without one, a background thread runs `campaigns.submit` (or `retry`,
`resume`), which starts a `LocalCluster` for that campaign and records every event and outcome
in the store until the campaign ends. A campaign's page follows it through `CampaignFeed`: the
whole campaign once, then only the jobs whose rows changed.
"""

from __future__ import annotations

import datetime as _dt
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from bl_reservoir.errors import ReservoirError, UsageError
from bl_reservoir.results import utc_text
from bl_reservoir.scale import schema

log = logging.getLogger(__name__)


class Submitter:
    """Starts campaigns (and retries and resumes them) through `bl_reservoir.scale.campaigns`, each driven by
    its own thread."""

    def __init__(self, db_url: str, scheduler: str | None, created_timeout_s: float = 120.0,
                 connect_timeout_s: float = 10.0):
        self.db_url = db_url
        self.scheduler = scheduler
        self.created_timeout_s = created_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._threads: list[threading.Thread] = []

    def submit(self, algorithm: str, inputs: Sequence[str], *, bucket: str, parameters: Sequence[str] = (),
               max_attempts: int = 3, force: bool = False) -> str:
        """A new campaign of `algorithm` over `inputs`, started; its id once it is in the store.

        Raises what `campaigns.submit` raises before creating it (`UnknownAlgorithm`, `UsageError`,
        `SchedulerUnreachable`).
        """
        from bl_reservoir.scale import campaigns

        def run(engine: Any, created: Callable[[str, int], None]) -> None:
            campaigns.submit(algorithm, list(inputs), options=list(parameters), bucket=bucket, db=self.db_url,
                             scheduler=self.scheduler, max_attempts=max_attempts, force=force,
                             detach=bool(self.scheduler), on_created=created, engine=engine)

        found = self._drive(f"the campaign of {algorithm}", run)
        if found is None:
            raise UsageError(f"the campaign of {algorithm} was not created")
        return found[0]

    def rerun(self, action: str, campaign: str) -> int:
        """`retry` (its failed jobs) or `resume` (its unfinished ones) a campaign, started; how many jobs run again.

        Raises `UsageError` for a campaign the store does not hold, `SchedulerUnreachable` for a scheduler
        that does not answer."""
        from bl_reservoir.scale import campaigns

        again = {"retry": campaigns.retry, "resume": campaigns.resume}[action]

        def run(engine: Any, created: Callable[[str, int], None]) -> None:
            again(campaign, db=self.db_url, scheduler=self.scheduler, detach=bool(self.scheduler), on_created=created)

        found = self._drive(f"{action} of campaign {campaign}", run)
        return 0 if found is None else found[1]

    def cancel(self, campaign: str) -> int:
        """Cancel a campaign's queued and running jobs (on the scheduler too); how many."""
        from bl_reservoir.scale import campaigns

        return campaigns.cancel(campaign, db=self.db_url, scheduler=self.scheduler)

    def _drive(self, label: str, run: Callable[[Any, Callable[[str, int], None]], None]) -> tuple[str, int] | None:
        """Run `run(engine, on_created)` in a thread of its own until it ends; what it passed `on_created`
        (campaign id, jobs) as soon as it does, None when it ended without (nothing to run), or what it raised
        before."""
        from bl_reservoir.scale.engine import Engine

        created: queue.SimpleQueue = queue.SimpleQueue()

        def drive() -> None:
            engine = None
            try:
                if self.scheduler:   # reached first: nothing is created for a scheduler that is down
                    engine = Engine(self.scheduler, timeout_s=self.connect_timeout_s)
                run(engine, lambda cid, n: created.put((cid, n)))
            except ReservoirError as exc:
                created.put(exc)  # before creation: the caller reports it; after: the store shows it
                log.warning("%s stopped: %s", label, exc)
            except Exception as exc:  # a bug: keep the server up, tell the caller, log the traceback
                created.put(exc)
                log.exception("%s stopped", label)
            finally:
                created.put(None)
                if engine is not None:
                    engine.close()

        thread = threading.Thread(target=drive, name=f"bl-reservoir-{label}", daemon=True)
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        try:
            found = created.get(timeout=self.created_timeout_s)
        except queue.Empty:
            raise UsageError(f"{label} did not start within {self.created_timeout_s:.0f} s") from None
        if isinstance(found, BaseException):
            raise found
        return found

    def close(self, timeout_s: float = 5.0) -> None:
        for thread in self._threads:
            thread.join(timeout_s)


def progress(counts: dict[str, int]) -> dict[str, Any]:
    """Totals and percent done of one campaign's `{state: n}` counts."""
    total = sum(counts.values())
    ended = sum(counts.get(s, 0) for s in schema.ENDED)
    return {"total": total, "ended": ended, "percent": round(100.0 * ended / total, 1) if total else 100.0}


def campaign_snapshot(store: Any, campaign_id: str, job_limit: int = 1000) -> dict[str, Any]:
    """One campaign with counts, progress and its jobs (the Campaigns page's live state)."""
    campaign = store.get_campaign(campaign_id)
    counts = store.campaign_counts(campaign_id)
    jobs = store.list_jobs(campaign_id, limit=job_limit)
    return {**campaign, "counts": counts, "progress": progress(counts), "jobs": jobs}


def campaigns_snapshot(store: Any, limit: int = 50) -> list[dict[str, Any]]:
    """The newest campaigns with counts and progress (no jobs)."""
    out = []
    for campaign in store.list_campaigns(limit=limit):
        counts = {state: campaign["counts"].get(state, 0) for state in schema.JOB_STATES}
        out.append({**campaign, "counts": counts, "progress": progress(counts)})
    return out


#: Seconds before a feed's cursor that each poll reads again: rows stamped by a clock a little behind (a worker
#: on another machine) or committed a little late still reach the page; rows read again unchanged are not sent.
FEED_LOOKBACK_S = 120.0


class CampaignFeed:
    """What a campaign's event stream sends: first the whole campaign (`campaign_snapshot`, `full` true), then
    only what changed (`full` false): state, counts and progress, and the jobs whose rows changed among its
    first `job_limit`, found by their `updated` time. `changes()` is None while nothing changed."""

    def __init__(self, store: Any, campaign_id: str, job_limit: int = 1000):
        self.store, self.campaign_id, self.job_limit = store, campaign_id, job_limit
        self._sent: dict[str, int] = {}   # job id -> digest of the row as last sent
        self._cursor = ""                  # the latest `updated` sent
        self._last: tuple[Any, ...] | None = None

    def first(self) -> dict[str, Any]:
        found = campaign_snapshot(self.store, self.campaign_id, self.job_limit)
        self._remember(found["jobs"])
        self._last = (found["state"], found["counts"])
        return {**found, "full": True}

    def changes(self) -> dict[str, Any] | None:
        campaign = self.store.get_campaign(self.campaign_id)
        counts = self.store.campaign_counts(self.campaign_id)
        since = _seconds_before(self._cursor, FEED_LOOKBACK_S)
        jobs = [j for j in self.store.changed_jobs(self.campaign_id, since, self.job_limit)
                if self._sent.get(j["id"]) != _digest(j)]
        self._remember(jobs)
        if not jobs and (campaign["state"], counts) == self._last:
            return None
        self._last = (campaign["state"], counts)
        return {"id": self.campaign_id, "full": False, "state": campaign["state"], "counts": counts,
                "progress": progress(counts), "jobs": jobs}

    def _remember(self, jobs: list[dict[str, Any]]) -> None:
        for job in jobs:
            self._sent[job["id"]] = _digest(job)
            self._cursor = max(self._cursor, job["updated"] or "")


def _digest(job: dict[str, Any]) -> int:
    return hash(tuple(map(str, job.values())))


def _seconds_before(iso: str, seconds: float) -> str:
    """The store's time format (`results.utcnow`), `seconds` before `iso`; "" (everything) for ""."""
    if not iso:
        return ""
    return utc_text(_dt.datetime.fromisoformat(iso.replace("Z", "+00:00")) - _dt.timedelta(seconds=seconds))
