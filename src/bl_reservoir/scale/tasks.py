"""What runs on a Dask worker for one job: the runner, with its events sent back to the store.

Events go through Dask's own event log (`Worker.log_event` on the campaign's topic, read by the
submitter with `Client.subscribe_topic`): no extra broker. A detached campaign has no submitter
listening, so its tasks write the store themselves: the worker's own `BL_RESERVOIR_DB` (the
workers must reach it; its URL, password and all, never travels with a task). The task never
raises for a failed job, nor for a bug in one: it returns the outcome, so only worker loss
reaches Dask's retry machinery. While it runs it sends a heartbeat (`HEARTBEAT`).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bl_reservoir import runner, settings
from bl_reservoir.errors import JobFailed, ReservoirError, UsageError
from bl_reservoir.results import to_jsonable, utcnow
from bl_reservoir.scale import event_stage, jobs
from bl_reservoir.scale.index import read_for_index
from bl_reservoir.scale.jobs import JobStore
from bl_reservoir.scale.outcomes import ATTEMPT, Outcome, Stores, apply_event, apply_outcome, apply_stage

log = logging.getLogger(__name__)

#: The event a running task sends every `jobs.HEARTBEAT_S`: it refreshes the job's `updated` time only.
HEARTBEAT = "heartbeat"
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
    max_result_bytes: int = runner.DEFAULT_MAX_RESULT_BYTES


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
        return lambda event: record(store, event)
    if topic:
        from distributed import get_worker

        worker = get_worker()
        return lambda event: worker.log_event(topic, to_jsonable(event))  # msgpack: plain types only
    return lambda event: None


def record(store: JobStore, event: dict[str, Any]) -> None:
    """Land one task event in the store: a heartbeat refreshes its job's `updated` time, any other is kept."""
    if event.get("event") == HEARTBEAT:
        store.heartbeat(event["job"])
    else:
        apply_event(store, event)


@contextmanager
def _heartbeat(emit: Callable[[dict], None], job_id: str) -> Iterator[None]:
    """Emit a heartbeat every `jobs.HEARTBEAT_S` while the body runs: a job whose heartbeats stop (its worker
    or submitter gone) is `failed` by the store after `jobs.LOST_AFTER_S`, and `resume` runs it again."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(jobs.HEARTBEAT_S):
            try:
                emit({"event": HEARTBEAT, "time": utcnow(), "job": job_id})
            except Exception as exc:  # noqa: BLE001 - a missed heartbeat must never stop the job
                log.warning("job %s: heartbeat not sent (%s)", job_id, exc)

    thread = threading.Thread(target=beat, name=f"bl-reservoir-heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def internal_error(input_uri: str, exc: BaseException) -> str:
    """A job's one-line error for a bug (an exception that is not a `ReservoirError`)."""
    message = (str(exc).strip().splitlines() or [""])[0]
    return f"{input_uri}: internal error {type(exc).__name__}" + (f": {message}" if message else "")


def detached_stores(campaign: str, bucket: str) -> Stores:
    """The stores a detached campaign's tasks write on this worker: its own `BL_RESERVOIR_DB`, else the SQLite
    file beside the campaign's bucket (as the submitter's default); `UsageError` when they lack the campaign."""
    stores = Stores.open(settings.db_url(None, bucket))
    try:
        stores.jobs.get_campaign(campaign)
    except ReservoirError as exc:
        stores.close()
        raise UsageError(f"{exc}: this worker's job store is not the submitter's (set BL_RESERVOIR_DB on the "
                         f"workers to the store the campaign was submitted to)") from None
    return stores


def run_task(spec: JobSpec, topic: str | None = None, write_store: bool = False) -> Outcome:
    """Run one job on this worker (called by Dask); every outcome is returned, none raised.

    `write_store`: nobody listens on `topic` (a detached campaign), so events and the outcome go to this
    worker's own job store (`detached_stores`). The store's URL never travels with the task: it may carry a
    password, and task arguments are visible to anyone who can read the scheduler."""
    stores = detached_stores(spec.campaign, spec.bucket) if write_store else None
    try:
        emit = _sink(topic, stores.jobs if stores else None)
        emit({"event": ATTEMPT, "time": utcnow(), "job": spec.job_id, "worker": _worker_address()})
        with _heartbeat(emit, spec.job_id):
            outcome = _run(spec, emit)
        if stores is not None:
            apply_outcome(stores, outcome, spec.algorithm)
            for stage in event_stage.ready_stages(stores.jobs, stores.cadences, spec.campaign):
                _start_detached_stage(stores, stage)
            stores.jobs.close_campaign(spec.campaign)
    finally:
        if stores is not None:
            stores.close()
    return outcome


def _run(spec: JobSpec, emit: Callable[[dict], None]) -> Outcome:
    """The runner on one job, its outcome whatever happens (a bug too: failed, with one line)."""
    try:
        result = runner.run_job(spec.algorithm, spec.input_uri, bucket=spec.bucket, options=spec.options,
                                force=spec.force, timeout=spec.timeout, max_result_bytes=spec.max_result_bytes,
                                on_event=emit, job_id=spec.job_id,
                                should_stop=_cancelled_check(spec.campaign))
    except JobFailed as exc:
        return Outcome(spec.job_id, "failed", error=exc.reason)
    except ReservoirError as exc:  # the runner should wrap these; never let one look like worker loss
        return Outcome(spec.job_id, "failed", error=str(exc))
    except Exception as exc:  # a bug: the job still ends, failed with one line; the traceback goes to the log
        log.exception("job %s on %s", spec.job_id, spec.input_uri)
        return Outcome(spec.job_id, "failed", error=internal_error(spec.input_uri, exc))
    outcome = Outcome(spec.job_id, result.state, result.result_uri, result.n_hits, result.wall_seconds)
    _attach_index(outcome)
    return outcome


def _start_detached_stage(stores: Stores, spec: event_stage.CadenceSpec) -> None:
    """A detached campaign's events stage, submitted from the task whose job completed the cadence, to run
    on a worker that serves this package (as its jobs do) and write the stores itself."""
    from distributed import fire_and_forget, get_client, get_worker

    package = event_stage.EVENTS_ALGORITHM.split("/", 1)[0]
    resources = {package: 1} if package in (get_worker().state.total_resources or {}) else None
    client = get_client()
    stores.cadences.start(spec.cadence_id)
    fire_and_forget(client.submit(run_detached_stage, spec, key=event_stage.task_key(spec.campaign,
                                                                                      spec.cadence_id),
                                  pure=False, resources=resources))


def run_detached_stage(spec: event_stage.CadenceSpec) -> event_stage.CadenceOutcome:
    """`event_stage.run_stage`, recording its outcome in this worker's stores (a detached campaign has no
    submitter)."""
    outcome = event_stage.run_stage(spec)
    stores = detached_stores(spec.campaign, spec.bucket)
    try:
        apply_stage(stores, outcome)
        stores.jobs.close_campaign(spec.campaign)
    finally:
        stores.close()
    return outcome


def _attach_index(outcome: Outcome) -> None:
    """Read the result's header and hits here, where the bucket is at hand, for the hits index."""
    try:
        outcome.header, outcome.hits = read_for_index(outcome.result_uri)
    except Exception as exc:  # noqa: BLE001 - the result is complete in the bucket; only the index misses it
        log.warning("%s: not indexed (%s)", outcome.result_uri, exc)
