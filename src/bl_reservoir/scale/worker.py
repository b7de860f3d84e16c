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
from collections.abc import Sequence

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
          nthreads: int | None = None, name: str | None = None) -> int:
    """Run a worker for `algorithms` (names, or None for all) until the scheduler or a signal ends it."""
    address = settings.scheduler(scheduler)
    if not address:
        raise UsageError("a worker needs a scheduler: --scheduler ADDR or DASK_SCHEDULER_ADDRESS")
    nthreads = nthreads or os.cpu_count() or 1
    if nthreads < 1:
        raise UsageError(f"--nthreads must be at least 1, not {nthreads}")
    resources = worker_resources(algorithms, nthreads)
    log.info("worker for %s on %s with %d threads", ", ".join(resources), address, nthreads)
    asyncio.run(_serve(address, nthreads, resources, name))
    return 0


async def _serve(address: str, nthreads: int, resources: dict[str, int], name: str | None) -> None:
    from distributed import Worker

    async with Worker(address, nthreads=nthreads, resources=resources, name=name) as worker:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):  # a pod stops with SIGTERM: leave the cluster cleanly
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.close()))
        await worker.finished()
