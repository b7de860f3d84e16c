"""What runs on a Dask worker for one job: the runner, with its events sent back to the store.

Events go through Dask's own event log (`Worker.log_event` on the campaign's topic, read by the
submitter with `Client.subscribe_topic`): no extra broker. A detached campaign has no submitter
listening, so its tasks write the store themselves (`db_url` given; the workers must reach it).
The task never raises for a failed job: it returns the outcome, so only worker loss reaches
Dask's retry machinery.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bl_reservoir.errors import JobFailed, ReservoirError
from bl_reservoir.results import to_jsonable, utcnow

log = logging.getLogger(__name__)

#: The event a task emits first, before the runner starts: the store counts attempts from it.
ATTEMPT = "attempt"
_INDEX_COLUMNS = ("freqs", "drift_rate", "snr", "statistic")


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to run one job (plain data: it travels to the worker)."""

    job_id: str
    campaign: str
    algorithm: str
    input_uri: str
    bucket: str
    options: tuple[str, ...] = ()
    force: bool = False
    timeout: float = 6 * 3600.0   # seconds


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


def topic_of(campaign: str) -> str:
    """Dask event-log topic carrying one campaign's job events."""
    return f"bl-reservoir-{campaign}"


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except ValueError:  # not inside a Dask worker (direct call, tests)
        return socket.gethostname()


def cancel_event(campaign: str, client: Any = None) -> Any:
    """The Dask Event that says a campaign was cancelled (set by `cancel` and by its submitter).

    An explicit signal, not the task's own state: when a submitter dies, Dask releases its tasks
    too, and those jobs must finish for `resume` to pick up, not be killed."""
    from distributed import Event

    return Event(f"bl-reservoir-cancel-{campaign}", client=client)


def _cancelled_check(campaign: str) -> Callable[[], bool] | None:
    """True once the campaign is cancelled: the runner then kills the algorithm and uploads nothing.
    None outside a Dask worker."""
    try:
        from distributed import get_worker

        get_worker()
    except (ValueError, ImportError):
        return None
    event = cancel_event(campaign)

    def cancelled() -> bool:
        try:
            return event.is_set()
        except (OSError, TimeoutError) as exc:  # scheduler out of reach for a moment: the job goes on
            log.warning("campaign %s: cannot read its cancel signal (%s); the job goes on", campaign, exc)
            return False

    return cancelled


def _sink(topic: str | None, store: Any) -> Callable[[dict], None]:
    if store is not None:
        from bl_reservoir.scale import campaigns

        return lambda event: campaigns.apply_event(store, event)
    if topic:
        from distributed import get_worker

        worker = get_worker()
        return lambda event: worker.log_event(topic, to_jsonable(event))  # msgpack: plain types only
    return lambda event: None


def run_task(spec: JobSpec, topic: str | None = None, db_url: str | None = None) -> Outcome:
    """Run one job on this worker (called by Dask); every outcome is returned, none raised."""
    from bl_reservoir import runner

    from bl_reservoir.scale.store import Store

    store = Store(db_url) if db_url else None
    emit = _sink(topic, store)
    emit({"event": ATTEMPT, "time": utcnow(), "job": spec.job_id, "worker": _worker_address()})
    try:
        result = runner.run_job(spec.algorithm, spec.input_uri, bucket=spec.bucket, options=spec.options,
                                force=spec.force, timeout=spec.timeout, on_event=emit, job_id=spec.job_id,
                                should_stop=_cancelled_check(spec.campaign))
        outcome = Outcome(spec.job_id, result.state, result.result_uri, result.n_hits, result.wall_seconds)
        _attach_index(outcome)
    except JobFailed as exc:
        outcome = Outcome(spec.job_id, "failed", error=exc.reason)
    except ReservoirError as exc:  # the runner should wrap these; never let one look like worker loss
        outcome = Outcome(spec.job_id, "failed", error=str(exc))
    if store is not None:
        from bl_reservoir.scale import campaigns

        campaigns.apply_outcome(store, outcome, spec.algorithm)
        store.close_campaign(spec.campaign)
        store.close()
    return outcome


def _attach_index(outcome: Outcome) -> None:
    """Read the result's header and hits here, where the bucket is at hand, for the hits index."""
    from bl_reservoir.results import read_results

    try:
        found = read_results(outcome.result_uri, stamps=False)
    except ReservoirError as exc:
        log.warning("%s: not indexed (%s)", outcome.result_uri, exc)
        return
    outcome.header = found.header
    outcome.hits = found.hits[[c for c in _INDEX_COLUMNS if c in found.hits.columns]]
