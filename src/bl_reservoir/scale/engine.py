"""The Dask engine: one task per job, events back into the store, retries on worker loss.

`Engine(scheduler)` connects to any Dask scheduler (Kubernetes, HPC via dask-jobqueue,
hand-started workers); without an address it starts an in-process `LocalCluster` sized to the
machine, the embedded default. We write no scheduler of our own: Dask places, runs and
reschedules tasks; the store records what happened.

Attempts: every task emits an `attempt` event before it runs the job, so a job rerun after its
worker died shows `attempts >= 2` whoever reran it (the scheduler itself, up to its
`allowed-failures`, or this engine on `KilledWorker`, up to `max_attempts`).
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from bl_reservoir.errors import ReservoirError, UsageError
from bl_reservoir.runner import DEFAULT_MAX_RESULT_BYTES, DEFAULT_TIMEOUT_S
from bl_reservoir.scale import event_stage, security
from bl_reservoir.scale.event_stage import CadenceOutcome, CadenceSpec
from bl_reservoir.scale.jobs import JobStore
from bl_reservoir.scale.outcomes import Outcome, Stores, apply_outcome, apply_stage
from bl_reservoir.scale.tasks import (
    JobSpec,
    cancel_event,
    detached_stores,
    internal_error,
    job_of,
    record,
    run_task,
    task_key,
    topic_of,
)

log = logging.getLogger(__name__)

_TICK_SECONDS = 0.1       # how often the submitter drains events and finished tasks
_PROGRESS_SECONDS = 0.5   # how often it reads counts from the store for the progress callback
_LOOPBACK = "127.0.0.1"


class Engine:
    """A Dask client for campaigns; use as a context manager (it closes what it started)."""

    def __init__(self, scheduler: str | None = None, *, n_workers: int | None = None, processes: bool = False,
                 dashboard: bool = False, timeout_s: float = security.CONNECT_TIMEOUT_S):
        """Connect to `scheduler` (with the control plane's TLS, `scale.security`; `SchedulerUnreachable` after
        `timeout_s`), or start an embedded cluster of `n_workers` job slots (default: one per CPU). Embedded
        slots are threads unless `processes`: every job already runs its algorithm in a subprocess, and threads
        start in no time and share one import of everything. An embedded cluster serves this process only: it
        listens on 127.0.0.1 (threads talk in-process), and shows its dashboard only when `dashboard`."""
        from distributed import Client

        self.scheduler = scheduler
        self.cluster = None
        self._alive: set[str] = set()
        self._executing: dict[str, str] = {}   # task key -> worker running it now
        if scheduler:
            self.client = security.connect(scheduler, timeout_s)
        else:
            self.cluster = _embedded_cluster(n_workers or os.cpu_count() or 1, processes, dashboard)
            self.client = Client(self.cluster, security=self.cluster.security)
        log.info("engine on %s", self.client.scheduler.address)
        if self.cluster is not None and dashboard:
            log.warning("Dask dashboard (--dashboard) on http://%s:%d/status", _LOOPBACK,
                        self.cluster.scheduler.http_server.port)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def resources_for(self, package: str) -> dict[str, int] | None:
        """`{package: 1}` when workers advertise algorithm resources, else None (any worker will do)."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        advertised = {name for w in workers for name in (w.get("resources") or {})}
        if not advertised:
            return None
        if package not in advertised:
            log.warning("no worker serves %s yet (workers serve %s): jobs wait for one",
                        package, ", ".join(sorted(advertised)))
        return {package: 1}

    def _submit(self, job: dict, spec: JobSpec, resources: dict | None, topic: str | None, write_store: bool):
        # A job some worker is still executing (its submitter died) goes back to that worker, where
        # Dask joins the running copy instead of starting a second one. The store's `worker` may
        # be late (the attempt event was in flight), so the workers themselves are asked first.
        key = task_key(spec.job_id)
        previous = self._executing.get(key) or job.get("worker")
        placement = {"workers": [previous], "allow_other_workers": True} if previous in self._alive else {}
        return self.client.submit(run_task, spec, topic, write_store, key=key, pure=False, resources=resources,
                                  **placement)

    def _prepare(self, package: str) -> dict[str, int] | None:
        self._alive = set(self.client.scheduler_info(n_workers=-1)["workers"])
        found = self.client.run(_executing_keys, on_error="ignore") if self._alive else {}
        self._executing = {key: address for address, keys in (found or {}).items() for key in keys}
        return self.resources_for(package)

    def detach(self, store: JobStore, campaign: dict, jobs: Sequence[dict], *, force: bool = False) -> None:
        """Submit and leave: the tasks outlive this client and write the store themselves, the workers' own
        (`BL_RESERVOIR_DB`). Workers that would run them and cannot see this campaign in their store fail the
        jobs here, with one line saying so, rather than leave them queued for ever."""
        from distributed import fire_and_forget

        if self.cluster is not None:
            raise UsageError("--detach needs a running scheduler (--scheduler or DASK_SCHEDULER_ADDRESS): "
                             "an embedded cluster ends with this process")
        resources = self._prepare(campaign["algorithm"].split("/", 1)[0])
        self._check_workers_store(store, campaign, jobs, resources)
        cancel_event(campaign["id"], self.client).clear()  # a resumed or retried campaign runs again
        for job in jobs:
            fire_and_forget(self._submit(job, _spec(campaign, job, force), resources, None, True))

    def _check_workers_store(self, store: JobStore, campaign: dict, jobs: Sequence[dict],
                             resources: dict[str, int] | None) -> None:
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        serving = [address for address, worker in info.items()
                   if not resources or set(resources) <= set(worker.get("resources") or {})]
        if not serving:
            return   # no worker yet: the first task to run on one checks (`tasks.detached_stores`)
        found = self.client.run(_store_error, campaign["id"], campaign["bucket"], workers=serving,
                                on_error="return")
        wrong = {address: error for address, error in found.items() if error is not None}
        if not wrong:
            return
        address, error = sorted(wrong.items())[0]
        reason = f"{len(wrong)} of {len(serving)} workers cannot record this detached campaign, e.g. {address}: {error}"
        for job in jobs:
            store.finish_job(job["id"], "failed", error=reason)
        store.close_campaign(campaign["id"])
        raise UsageError(reason)

    def run(self, stores: Stores, campaign: dict, jobs: Sequence[dict], *, force: bool = False,
            on_progress: Callable[[dict[str, int]], None] | None = None) -> dict[str, int]:
        """Run the jobs to the end, recording events and outcomes, and each cadence's events stage once
        its six jobs succeeded; the campaign's counts by state."""
        from distributed import as_completed

        store = stores.jobs
        cid = campaign["id"]
        topic = topic_of(cid)
        events: queue.SimpleQueue = queue.SimpleQueue()
        self.client.subscribe_topic(topic, lambda event: events.put(event[1]))
        resources = self._prepare(campaign["algorithm"].split("/", 1)[0])
        cancel_event(cid, self.client).clear()  # a resumed or retried campaign runs again
        specs = {task_key(job["id"]): _spec(campaign, job, force) for job in jobs}
        pending = as_completed([self._submit(job, specs[task_key(job["id"])], resources, topic, False)
                                for job in jobs])
        stages: dict[str, CadenceSpec] = {}

        def start_stages() -> None:
            for spec in event_stage.ready_stages(store, stores.cadences, cid):
                key = event_stage.task_key(cid, spec.cadence_id)
                stages[key] = spec
                stores.cadences.start(spec.cadence_id)
                pending.add(self.client.submit(event_stage.run_stage, spec, key=key, pure=False,
                                               resources=resources))

        start_stages()   # cadences whose jobs had all succeeded before (resume, retry)
        losses: Counter[str] = Counter()
        last_progress = 0.0
        try:
            while not pending.is_empty():
                _drain(store, events)
                for future in pending.next_batch(block=False):
                    if future.key in stages:
                        self._stage_finished(stores, stages[future.key], future)
                        continue
                    spec = specs[future.key]
                    _drain(store, events)   # the attempt event first, then the outcome
                    if self._finished(stores, campaign, spec, future, losses):
                        pending.add(future)
                    else:
                        start_stages()
                if time.monotonic() - last_progress > _PROGRESS_SECONDS:
                    last_progress = time.monotonic()
                    if store.get_campaign(cid)["state"] == "cancelled":
                        log.info("campaign %s cancelled: stopping its running jobs, dropping the rest", cid)
                        cancel_event(cid, self.client).set()
                        self.client.cancel(list(pending.futures))
                        break
                    if on_progress:
                        on_progress(store.campaign_counts(cid))
                time.sleep(_TICK_SECONDS)
            _drain(store, events)
        finally:
            self.client.unsubscribe_topic(topic)
        store.close_campaign(cid)
        counts = store.campaign_counts(cid)
        if on_progress:
            on_progress(counts)
        return counts

    @staticmethod
    def _stage_finished(stores: Stores, spec: CadenceSpec, future: Any) -> None:
        """Record a cadence's events stage; a lost or cancelled task fails it with one line (`retry` reruns it)."""
        if future.status == "finished":
            apply_stage(stores, future.result())
            return
        why = "cancelled" if future.status == "cancelled" else f"{type(future.exception()).__name__}: " \
            f"{future.exception()}"
        apply_stage(stores, CadenceOutcome(spec.cadence_id, "failed", error=f"cadence {spec.cadence_id}: {why}"))

    def _finished(self, stores: Stores, campaign: dict, spec: JobSpec, future: Any, losses: Counter) -> bool:
        """Record a finished task; True when it was resubmitted after losing its worker."""
        from distributed.scheduler import KilledWorker

        store = stores.jobs
        if future.status == "finished":
            apply_outcome(stores, future.result(), campaign["algorithm"])
            return False
        if future.status == "cancelled":
            return False  # cancelled by the user or the cluster: the job stays unfinished, `resume` reruns it
        exc = future.exception()
        if isinstance(exc, KilledWorker):
            losses[spec.job_id] += 1
            attempts = max(store.get_job(spec.job_id)["attempts"], losses[spec.job_id])
            if attempts < campaign["max_attempts"]:
                log.warning("job %s lost its worker (attempt %d of %d): resubmitting", spec.job_id, attempts,
                            campaign["max_attempts"])
                future.retry()
                return True
            reason = f"{spec.input_uri}: worker lost on each of {attempts} attempts"
        else:
            reason = internal_error(spec.input_uri, exc)
        apply_outcome(stores, Outcome(spec.job_id, "failed", error=reason), campaign["algorithm"])
        return False


def _embedded_cluster(slots: int, processes: bool, dashboard: bool) -> Any:
    """A `LocalCluster` of `slots` job slots on loopback, with the control plane's TLS when it is configured."""
    import dask
    from distributed import LocalCluster

    # Engine-side retries are visible in the store; the embedded scheduler retries nothing itself.
    config: dict[str, Any] = {"distributed.scheduler.allowed-failures": 0}
    if not dashboard:   # Dask always starts the HTTP server; without the dashboard it answers /health only
        config["distributed.scheduler.http.routes"] = ["distributed.http.health"]
    # threads talk in-process (inproc://, no socket); processes over TCP or TLS on loopback
    shape = {"n_workers": slots, "threads_per_worker": 1, "host": _LOOPBACK} if processes \
        else {"n_workers": 1, "threads_per_worker": slots}
    with dask.config.set(config):
        # the HTTP server on loopback and a free port: the default 8787 may be taken (distributed then warns
        # and leaks the socket it failed to bind)
        return LocalCluster(processes=processes, dashboard_address=f"{_LOOPBACK}:0",
                            scheduler_kwargs={"dashboard": dashboard}, security=security.dask_security(), **shape)


def _executing_keys(dask_worker: Any) -> list[str]:
    """Keys of our tasks this worker is running, including ones whose client has gone (runs on workers)."""
    busy = ("executing", "long-running", "cancelled", "resumed")
    return [str(key) for key, ts in dask_worker.state.tasks.items() if ts.state in busy and job_of(key)]


def _store_error(campaign: str, bucket: str) -> str | None:
    """Why this worker's job store cannot take a detached campaign's events; None when it can (runs on workers)."""
    try:
        detached_stores(campaign, bucket).close()
    except ReservoirError as exc:
        return str(exc)
    return None


def _spec(campaign: dict, job: dict, force: bool) -> JobSpec:
    return JobSpec(job["id"], campaign["id"], campaign["algorithm"], job["input_uri"], campaign["bucket"],
                   tuple(campaign["parameters"]), force, campaign.get("timeout_s") or DEFAULT_TIMEOUT_S,
                   campaign.get("max_result_bytes") or DEFAULT_MAX_RESULT_BYTES)


def _drain(store: JobStore, events: queue.SimpleQueue) -> None:
    while True:
        try:
            event = events.get_nowait()
        except queue.Empty:
            return
        record(store, event)
