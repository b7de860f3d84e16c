"""The engine's Dask workers as the Workers page shows them: their jobs, and what those jobs cost.

The scheduler (`Client.scheduler_info()`) gives each worker's threads, resources and the Dask
process's own CPU and memory. What a worker is running comes from the worker itself, through
`Client.run`: the tasks in its executing set (the scheduler's `processing()` lists queued ones
too), and, for each, the processes the runner started for it (the algorithm, and anything it
started in turn), found by the job's scratch folder (`runner.scratch_prefix`) in their command line or
working folder. Their CPU (percent of one core, summed over the processes) is measured between two
looks at the worker; the first look gives their average since each started. A job's Dask key is
`blr-<job id>`, which links a running task to its job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from bl_reservoir.scale.tasks import job_of

log = logging.getLogger(__name__)


class WorkerView:
    """Describes the workers of a scheduler; keeps one Dask client, connected on first use."""

    def __init__(self, scheduler: str | None, timeout_s: float = 5.0):
        self.scheduler = scheduler
        self.timeout_s = timeout_s
        self._client: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        from bl_reservoir.scale.security import connect

        with self._lock:
            if self._client is None or self._client.status not in ("running", "connecting"):
                self._client = connect(self.scheduler, self.timeout_s, set_as_default=False)
            return self._client

    def describe(self, store: Any) -> dict[str, Any]:
        """`{"scheduler", "workers": [...], "error"}`; `scheduler` None when none is configured."""
        if not self.scheduler:
            return {"scheduler": None, "workers": [], "error": None}
        from bl_reservoir.errors import ReservoirError
        from bl_reservoir.scale.security import SchedulerUnreachable

        try:
            client = self._connect()
        except SchedulerUnreachable as exc:
            return {"scheduler": self.scheduler, "workers": [], "error": f"cannot reach the scheduler: {exc.reason}"}
        except ReservoirError as exc:   # TLS settings that cannot work
            return {"scheduler": self.scheduler, "workers": [], "error": str(exc)}
        try:
            info = client.scheduler_info(n_workers=-1)
            running = client.run(_running_jobs_probe(), on_error="return") if info.get("workers") else {}
        except Exception as exc:  # noqa: BLE001 - any scheduler failure is shown on the page, not raised
            return {"scheduler": self.scheduler, "workers": [], "error": f"scheduler error: {exc}"}
        rows = [_row(address, worker, running.get(address), store)
                for address, worker in sorted(info.get("workers", {}).items())]
        return {"scheduler": info.get("address", self.scheduler), "workers": rows, "error": None}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _running_jobs_probe() -> Callable[[Any], dict[str, dict[str, float]]]:
    """The function `Client.run` sends to each worker. Made here, not at module level, so that it travels
    by value (cloudpickle): a worker runs it without importing the web tier."""

    def running_jobs(dask_worker: Any) -> dict[str, dict[str, float]]:
        """{job id: {"cpu_percent", "memory_bytes", "processes"}} of the jobs this worker is executing: the CPU
        (percent of one core) and resident memory of the processes started for each (runs on the worker)."""
        import time

        import psutil

        from bl_reservoir.runner import scratch_prefix
        from bl_reservoir.scale.engine import _executing_keys

        jobs = [j for j in map(job_of, _executing_keys(dask_worker)) if j is not None]
        seen = dask_worker.__dict__.setdefault("_bl_reservoir_seen", {})   # pid -> psutil.Process, for CPU deltas
        out = {job: {"cpu_percent": 0.0, "memory_bytes": 0, "processes": 0} for job in jobs}
        try:
            children = psutil.Process().children(recursive=True)
        except psutil.Error:
            children = []
        owner: dict[int, str] = {}
        for proc in children:   # parents come before their children: a child belongs to its parent's job
            try:
                parent = proc.ppid()
                if parent in owner:
                    owner[proc.pid] = owner[parent]
                    continue
                where = " ".join(proc.cmdline()) + " " + proc.cwd()
            except psutil.Error:
                continue
            found = next((job for job in jobs if f"/{scratch_prefix(job)}" in where), None)
            if found is not None:
                owner[proc.pid] = found
        for pid, job in owner.items():
            try:
                proc = seen.get(pid) or psutil.Process(pid)
                with proc.oneshot():
                    if pid in seen:
                        cpu = proc.cpu_percent(None)
                    else:   # the first look: the average since it started
                        times = proc.cpu_times()
                        cpu = 100.0 * (times.user + times.system) / max(1e-3, time.time() - proc.create_time())
                        proc.cpu_percent(None)   # the start of the next interval
                    memory = proc.memory_info().rss
            except psutil.Error:
                continue
            seen[pid] = proc
            out[job]["cpu_percent"] += cpu
            out[job]["memory_bytes"] += memory
            out[job]["processes"] += 1
        for pid in set(seen) - set(owner):
            del seen[pid]
        return out

    return running_jobs


def _row(address: str, worker: dict[str, Any], running: Any, store: Any) -> dict[str, Any]:
    metrics = worker.get("metrics") or {}
    jobs = []
    if isinstance(running, dict):
        for job_id, usage in sorted(running.items()):
            try:
                job = store.get_job(job_id)
                shown = {"id": job["id"], "campaign": job["campaign"], "input_uri": job["input_uri"]}
            except Exception:  # noqa: BLE001 - a task of another store, or a job row already gone
                shown = {"id": job_id, "campaign": None, "input_uri": None}
            jobs.append({**shown, **usage})
    resources = worker.get("resources") or {}
    return {"address": address, "name": str(worker.get("name", address)), "nthreads": worker.get("nthreads"),
            "cpu_percent": metrics.get("cpu"), "memory_bytes": metrics.get("memory"),
            "memory_limit_bytes": worker.get("memory_limit"), "current_jobs": jobs,
            "jobs_cpu_percent": sum(j["cpu_percent"] for j in jobs) if isinstance(running, dict) else None,
            "jobs_memory_bytes": sum(j["memory_bytes"] for j in jobs) if isinstance(running, dict) else None,
            "error": None if running is None or isinstance(running, dict) else f"cannot look at its jobs: {running}",
            "algorithms": sorted(resources) or ["any"]}
