"""The engine's Dask workers as the Workers page shows them: CPU, memory, current job, algorithms.

Read from the scheduler (`Client.scheduler_info()` and `Client.processing()`), never from the
workers themselves; a job's Dask key is `blr-<job id>`, which links a running task to its job.
"""

from __future__ import annotations

import logging
import threading
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
        from distributed import Client

        with self._lock:
            if self._client is None or self._client.status not in ("running", "connecting"):
                self._client = Client(self.scheduler, timeout=f"{self.timeout_s}s", set_as_default=False)
            return self._client

    def describe(self, store: Any) -> dict[str, Any]:
        """`{"scheduler", "workers": [...], "error"}`; `scheduler` None when none is configured."""
        if not self.scheduler:
            return {"scheduler": None, "workers": [], "error": None}
        try:
            client = self._connect()
        except OSError as exc:
            return {"scheduler": self.scheduler, "workers": [], "error": f"cannot reach the scheduler: {exc}"}
        try:
            info = client.scheduler_info(n_workers=-1)
            processing = client.processing()
        except Exception as exc:  # noqa: BLE001 - any scheduler failure is shown on the page, not raised
            return {"scheduler": self.scheduler, "workers": [], "error": f"scheduler error: {exc}"}
        rows = [_row(address, worker, processing.get(address, ()), store)
                for address, worker in sorted(info.get("workers", {}).items())]
        return {"scheduler": info.get("address", self.scheduler), "workers": rows, "error": None}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _row(address: str, worker: dict[str, Any], keys: Any, store: Any) -> dict[str, Any]:
    metrics = worker.get("metrics") or {}
    jobs = []
    for key in keys:
        job_id = job_of(key)
        if job_id is not None:
            try:
                job = store.get_job(job_id)
                jobs.append({"id": job["id"], "campaign": job["campaign"], "input_uri": job["input_uri"]})
            except Exception:  # noqa: BLE001 - a task of another store, or a job row already gone
                jobs.append({"id": job_id, "campaign": None, "input_uri": None})
    resources = worker.get("resources") or {}
    return {"address": address, "name": str(worker.get("name", address)), "nthreads": worker.get("nthreads"),
            "cpu_percent": metrics.get("cpu"), "memory_bytes": metrics.get("memory"),
            "memory_limit_bytes": worker.get("memory_limit"), "current_jobs": jobs,
            "algorithms": sorted(resources) or ["any"]}
