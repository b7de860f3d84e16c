"""What runs on a Dask worker for one job: the runner, with its events sent back to the store.

Events go through Dask's own event log (`Worker.log_event` on the campaign's topic, read by the
submitter with `Client.subscribe_topic`): no extra broker. A detached campaign has no submitter
listening, so its tasks write the store themselves (`db_url` given; the workers must reach it).
The task never raises for a failed job: it returns the outcome, so only worker loss reaches
Dask's retry machinery.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bl_reservoir import runner
from bl_reservoir.errors import JobFailed, ReservoirError
from bl_reservoir.results import read_results, to_jsonable, utcnow
from bl_reservoir.scale import event_stage
from bl_reservoir.scale.index import INDEXED_COLUMNS
from bl_reservoir.scale.jobs import JobStore
from bl_reservoir.scale.outcomes import ATTEMPT, Outcome, Stores, apply_event, apply_outcome, apply_stage

log = logging.getLogger(__name__)

#: Every Dask key of ours starts with it: `blr-<job id>`.
TASK_PREFIX = "blr-"
_JOB_KEY = re.compile(re.escape(TASK_PREFIX) + r"([0-9a-f]{16})")


def task_key(job_id: str) -> str:
    """Dask key of a job: stable, so a resubmission joins a task still running on the cluster."""
    return f"{TASK_PREFIX}{job_id}"


def job_of(key: Any) -> str | None:
    """The job id of one of our jobs' Dask keys; None for any other task (a cadence's events stage too)."""
    found = _JOB_KEY.fullmatch(str(key))
    return found.group(1) if found else None


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
    timeout: float = runner.DEFAULT_TIMEOUT_S   # seconds


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


def _sink(topic: str | None, store: JobStore | None) -> Callable[[dict], None]:
    if store is not None:
        return lambda event: apply_event(store, event)
    if topic:
        from distributed import get_worker

        worker = get_worker()
        return lambda event: worker.log_event(topic, to_jsonable(event))  # msgpack: plain types only
    return lambda event: None


def run_task(spec: JobSpec, topic: str | None = None, db_url: str | None = None) -> Outcome:
    """Run one job on this worker (called by Dask); every outcome is returned, none raised."""
    stores = Stores.open(db_url) if db_url else None
    emit = _sink(topic, stores.jobs if stores else None)
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
    if stores is not None:
        apply_outcome(stores, outcome, spec.algorithm)
        for stage in event_stage.ready_stages(stores.jobs, stores.cadences, spec.campaign):
            _start_detached_stage(stage, db_url)
        stores.jobs.close_campaign(spec.campaign)
        stores.close()
    return outcome


def _start_detached_stage(spec: event_stage.CadenceSpec, db_url: str) -> None:
    """A detached campaign's events stage, submitted from the task whose job completed the cadence, to run
    on a worker that serves this package (as its jobs do) and write the stores itself."""
    from distributed import fire_and_forget, get_client, get_worker

    package = event_stage.EVENTS_ALGORITHM.split("/", 1)[0]
    resources = {package: 1} if package in (get_worker().state.total_resources or {}) else None
    client = get_client()
    Stores.open(db_url).cadences.start(spec.cadence_id)
    fire_and_forget(client.submit(run_detached_stage, spec, db_url, key=event_stage.task_key(spec.campaign,
                                                                                               spec.cadence_id),
                                  pure=False, resources=resources))


def run_detached_stage(spec: event_stage.CadenceSpec, db_url: str) -> event_stage.CadenceOutcome:
    """`event_stage.run_stage`, recording its outcome in the stores (a detached campaign has no submitter)."""
    outcome = event_stage.run_stage(spec)
    stores = Stores.open(db_url)
    try:
        apply_stage(stores, outcome)
        stores.jobs.close_campaign(spec.campaign)
    finally:
        stores.close()
    return outcome


def _attach_index(outcome: Outcome) -> None:
    """Read the result's header and hits here, where the bucket is at hand, for the hits index."""
    try:
        found = read_results(outcome.result_uri, stamps=False)
    except ReservoirError as exc:
        log.warning("%s: not indexed (%s)", outcome.result_uri, exc)
        return
    outcome.header = found.header
    outcome.hits = found.hits[[c for c in INDEXED_COLUMNS if c in found.hits.columns]]
