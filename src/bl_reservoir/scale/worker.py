"""A Dask worker that serves algorithms: `bl-reservoir worker`, and the original Docker `CMD`
(`python -m bl_reservoir.<package>.<name>` with no input) in a pod.

It advertises one Dask resource per algorithm package it can run, so a scheduler serving
several kinds of worker sends each job where its algorithm lives (tasks ask `{package: 1}`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Sequence
from typing import Any

from bl_reservoir import settings
from bl_reservoir.errors import UsageError

log = logging.getLogger(__name__)


def worker_resources(algorithms: str | Sequence[str] | None, nthreads: int) -> dict[str, int]:
    """`{package: nthreads}` for each package of the named algorithms (every known one if None)."""
    from bl_reservoir.algorithms import get_algorithm, list_algorithms

    if isinstance(algorithms, str):
        algorithms = [a for a in algorithms.split(",") if a]
    found = [get_algorithm(name) for name in algorithms] if algorithms else list_algorithms()
    if not found:
        raise UsageError("no algorithm to serve: the registry is empty")
    return {alg.package: nthreads for alg in found}


def serve(algorithms: str | Sequence[str] | None = None, scheduler: str | None = None,
          nthreads: int | None = None, name: str | None = None, host: str | None = None,
          grace_s: float | None = None) -> int:
    """Run a worker for `algorithms` (names, or None for all) until the scheduler or a signal ends it.

    It listens on `host` (`settings.worker_host`: 127.0.0.1 unless told) and speaks TLS when the control plane
    has certificates (`scale.security`). SIGTERM or SIGINT drains it (`drain`, at most `grace_s` seconds,
    default `runner.DEFAULT_TIMEOUT_S`: the longest a job may run); a second one closes it at once."""
    from bl_reservoir.runner import DEFAULT_TIMEOUT_S
    from bl_reservoir.scale.security import dask_security, scheduler_address

    address = settings.scheduler(scheduler)
    if not address:
        raise UsageError("a worker needs a scheduler: --scheduler ADDR or DASK_SCHEDULER_ADDRESS")
    nthreads = nthreads or os.cpu_count() or 1
    if nthreads < 1:
        raise UsageError(f"--nthreads must be at least 1, not {nthreads}")
    grace_s = DEFAULT_TIMEOUT_S if grace_s is None else grace_s
    if grace_s < 0:
        raise UsageError(f"--grace-period must be 0 or more seconds, not {grace_s:g}")
    resources = worker_resources(algorithms, nthreads)
    security = dask_security(address, role="worker")
    address = scheduler_address(address, security)
    host = settings.worker_host(host)
    log.info("worker for %s on %s with %d threads, listening on %s", ", ".join(resources), address, nthreads, host)
    asyncio.run(_serve(address, nthreads, resources, name, host, security, grace_s))
    return 0


async def _serve(address: str, nthreads: int, resources: dict[str, int], name: str | None, host: str,
                 security: Any, grace_s: float) -> None:
    from distributed import Worker

    async with Worker(address, nthreads=nthreads, resources=resources, name=name, host=host,
                      security=security) as worker:
        loop = asyncio.get_running_loop()
        draining: list[asyncio.Task] = []

        def stop(sig: signal.Signals) -> None:
            if draining:   # a second signal: stop waiting for the running jobs
                log.warning("%s again: closing now; running jobs run again elsewhere", sig.name)
                asyncio.ensure_future(worker.close(reason=f"{sig.name} twice"))
                return
            log.warning("%s: draining, running jobs have %g s to finish (again to close at once)", sig.name, grace_s)
            draining.append(asyncio.ensure_future(drain(worker, grace_s)))

        for sig in (signal.SIGTERM, signal.SIGINT):  # a pod stops with SIGTERM: leave the cluster cleanly
            loop.add_signal_handler(sig, stop, sig)
        await worker.finished()


def _busy(worker: Any) -> int:
    """Tasks this worker is executing now."""
    return sum(1 for ts in worker.state.tasks.values() if ts.state in ("executing", "long-running"))


async def drain(worker: Any, grace_s: float, poll_s: float = 0.2) -> None:
    """Take no new job, let the running ones finish (at most `grace_s` seconds), hand what they returned to
    the scheduler, and close. A job still running when the grace period ends is lost with the worker, and
    the engine runs it again elsewhere."""
    from distributed.core import Status

    # Dask's own close_gracefully retires the worker at once and reschedules its running tasks elsewhere:
    # the job would run twice. Instead: closing_gracefully first (the scheduler sends it nothing new, and it
    # starts nothing it holds), then wait for the running ones.
    worker.status = Status.closing_gracefully
    deadline = time.monotonic() + grace_s
    while _busy(worker) and time.monotonic() < deadline:
        await asyncio.sleep(poll_s)
    if _busy(worker):
        log.warning("grace period over with %d jobs running: they run again elsewhere", _busy(worker))
    try:   # moves the results still held here to other workers before the scheduler forgets this one
        await worker.scheduler.retire_workers(workers=[worker.address], close_workers=False, remove=True,
                                              stimulus_id=f"bl-reservoir-drain-{time.time()}")
    except (OSError, ValueError) as exc:   # the scheduler is gone: nothing to hand over
        log.warning("could not retire from the scheduler (%s): closing", exc)
    await worker.close(reason="drained")
