"""Campaigns from the web: submitting them to the engine, and snapshots of their progress.

The web tier never runs an algorithm. With a Dask scheduler configured, jobs are handed to it
and left there (`detach`: their tasks write the store themselves). Without one, a background
thread runs `campaigns.submit`, which starts a `LocalCluster` for that campaign and records
every event and outcome in the store until the campaign ends.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import Any

from bl_reservoir.errors import ReservoirError, UsageError
from bl_reservoir.scale import schema

log = logging.getLogger(__name__)

class Submitter:
    """Starts campaigns through `bl_reservoir.scale.campaigns.submit`, each driven by its own thread."""

    def __init__(self, db_url: str, scheduler: str | None, created_timeout_s: float = 120.0):
        self.db_url = db_url
        self.scheduler = scheduler
        self.created_timeout_s = created_timeout_s
        self._threads: list[threading.Thread] = []

    def submit(self, algorithm: str, inputs: Sequence[str], *, bucket: str, parameters: Sequence[str] = (),
               max_attempts: int = 3, force: bool = False) -> str:
        """A new campaign of `algorithm` over `inputs`, started; its id once it is in the store.

        Raises what `campaigns.submit` raises before creating it (`UnknownAlgorithm`, `UsageError`).
        """
        from bl_reservoir.scale import campaigns

        created: queue.SimpleQueue = queue.SimpleQueue()

        def drive() -> None:
            try:
                campaigns.submit(algorithm, list(inputs), options=list(parameters), bucket=bucket, db=self.db_url,
                                 scheduler=self.scheduler, max_attempts=max_attempts, force=force,
                                 detach=bool(self.scheduler), on_created=lambda cid, n: created.put(cid))
            except ReservoirError as exc:
                created.put(exc)  # before creation: the caller reports it; after: the store shows it
                log.warning("campaign of %s stopped: %s", algorithm, exc)
            except Exception as exc:  # a bug: keep the server up, tell the caller, log the traceback
                created.put(exc)
                log.exception("campaign of %s stopped", algorithm)

        thread = threading.Thread(target=drive, name=f"bl-reservoir-campaign-{algorithm}", daemon=True)
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        try:
            found = created.get(timeout=self.created_timeout_s)
        except queue.Empty:
            raise UsageError(f"the campaign of {algorithm} was not created within {self.created_timeout_s:.0f} s") \
                from None
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
