"""What a campaign's tasks report, a job's events and outcome and a cadence's events stage, and how
they land in the job store, the hits index and the cadence store. The submitter applies them as
they arrive; a detached task applies its own."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from bl_reservoir.scale.cadences import CadenceStore
from bl_reservoir.scale.event_stage import CadenceOutcome
from bl_reservoir.scale.index import HitIndex
from bl_reservoir.scale.jobs import JobStore

log = logging.getLogger(__name__)

#: The event a task emits first, before the runner starts: the store counts attempts from it.
ATTEMPT = "attempt"


@dataclass
class Stores:
    """The three views of one database that a campaign writes, sharing one engine."""

    jobs: JobStore
    index: HitIndex
    cadences: CadenceStore

    @classmethod
    def open(cls, url: str | None = None) -> Stores:
        jobs = JobStore(url)
        return cls(jobs, HitIndex(share=jobs), CadenceStore(share=jobs))

    @property
    def url(self) -> str:
        return self.jobs.url

    def close(self) -> None:
        self.jobs.close()


@dataclass
class Outcome:
    """What a task returns: the job's final state and, for a result, what the hits index needs."""

    job_id: str
    state: str                                   # succeeded | skipped | failed
    result_uri: str | None = None
    n_hits: int | None = None
    wall_seconds: float | None = None
    error: str | None = None
    header: dict[str, Any] = field(default_factory=dict)
    hits: Any = None                              # info_df columns the index needs (DataFrame)


def obs_name_of(result_uri: str) -> str:
    """The observation a result folder belongs to (contract C3: `<bucket>/<obs>/<package>/<name>`)."""
    parts = result_uri.rstrip("/").split("/")
    return parts[-3] if len(parts) >= 3 else parts[-1]


def apply_event(store: JobStore, event: dict[str, Any]) -> None:
    """Record a job event; an `attempt` event also marks the job running on its worker."""
    try:
        store.record_event(event)
        if event.get("event") == ATTEMPT:
            store.start_attempt(event["job"], event.get("worker"), event.get("time"))
    except (KeyError, sa.exc.IntegrityError) as exc:  # an event of a job this store does not hold
        log.warning("event not recorded (%s): %r", exc, event)


def apply_outcome(stores: Stores, outcome: Outcome, algorithm: str) -> None:
    """Record a job's outcome and index its hits; a failure never overrides a cancellation."""
    if outcome.state == "failed":
        if stores.jobs.get_job(outcome.job_id)["state"] != "cancelled":
            stores.jobs.finish_job(outcome.job_id, "failed", error=outcome.error)
        return
    stores.jobs.finish_job(outcome.job_id, outcome.state, result_uri=outcome.result_uri, n_hits=outcome.n_hits,
                           wall_seconds=outcome.wall_seconds)
    if outcome.hits is not None:
        stores.index.index_result(outcome.job_id, obs_name_of(outcome.result_uri), algorithm, outcome.result_uri,
                                  outcome.header, outcome.hits)


def apply_stage(stores: Stores, outcome: CadenceOutcome) -> None:
    """Record a cadence's events stage: its state, and its events with the hits they join."""
    stores.cadences.finish(outcome.cadence_id, outcome.state, n_events=outcome.n_events,
                           events_uri=outcome.events_uri, error=outcome.error, events=outcome.events)
