"""Campaigns: submit one algorithm over many inputs, resume, retry, cancel; and how events and
outcomes land in the store.

Every function takes settings as flags (None: environment, then default, via
`bl_reservoir.settings`) and returns plain data; the CLI adds the progress bar and the table.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bl_reservoir import settings
from bl_reservoir.errors import UsageError
from bl_reservoir.scale.store import Store

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, int]], None]   # counts by state, called while a campaign runs
Created = Callable[[str, int], None]          # campaign id and number of jobs submitted
_GLOB_CHARS = "*?["


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Inputs as URIs: paths (made absolute), globs, URIs, and `@list.txt` (one URI per line, `#` comments)."""
    out: list[str] = []
    for item in inputs:
        if item.startswith("@"):
            listing = Path(item[1:]).expanduser()
            try:
                lines = listing.read_text().splitlines()
            except OSError as exc:
                raise UsageError(f"{listing}: cannot read the input list ({exc.strerror})") from None
            out.extend(expand_inputs(line.strip() for line in lines if line.strip() and not line.startswith("#")))
        elif "://" in item:
            out.append(item)
        elif any(c in item for c in _GLOB_CHARS):
            matched = sorted(glob.glob(str(Path(item).expanduser())))
            if not matched:
                raise UsageError(f"{item}: no file matches")
            out.extend(str(Path(p).resolve()) for p in matched)
        else:
            path = Path(item).expanduser()
            if not path.exists():
                raise UsageError(f"{item}: no such file")
            out.append(str(path.resolve()))
    return out


def obs_name_of(result_uri: str) -> str:
    """The observation a result folder belongs to (contract C3: `<bucket>/<obs>/<package>/<name>`)."""
    parts = result_uri.rstrip("/").split("/")
    return parts[-3] if len(parts) >= 3 else parts[-1]


def _bucket_uri(flag: str | None) -> str:
    uri = settings.bucket(flag)
    if "://" in uri and not uri.startswith("file://"):
        return uri
    return str(Path(uri.removeprefix("file://")).expanduser().resolve())  # workers may run elsewhere


# -- what tasks report ---------------------------------------------------------------------------

def apply_event(store: Store, event: dict[str, Any]) -> None:
    """Record a job event; an `attempt` event also marks the job running on its worker."""
    from bl_reservoir.scale.tasks import ATTEMPT

    try:
        store.record_event(event)
        if event.get("event") == ATTEMPT:
            store.start_attempt(event["job"], event.get("worker"), event.get("time"))
    except (KeyError, sa.exc.IntegrityError) as exc:  # an event of a job this store does not hold
        log.warning("event not recorded (%s): %r", exc, event)


def apply_outcome(store: Store, outcome: Any, algorithm: str) -> None:
    """Record a task's outcome and index its hits; a failure never overrides a cancellation."""
    if outcome.state == "failed":
        if store.get_job(outcome.job_id)["state"] != "cancelled":
            store.finish_job(outcome.job_id, "failed", error=outcome.error)
        return
    store.finish_job(outcome.job_id, outcome.state, result_uri=outcome.result_uri, n_hits=outcome.n_hits,
                     wall_seconds=outcome.wall_seconds)
    if outcome.hits is not None:
        store.index_result(outcome.job_id, obs_name_of(outcome.result_uri), algorithm, outcome.result_uri,
                           outcome.header, outcome.hits)


# -- commands ------------------------------------------------------------------------------------

def submit(algorithm: str, inputs: Sequence[str], *, options: Sequence[str] = (), bucket: str | None = None,
           db: str | None = None, scheduler: str | None = None, max_attempts: int = 3, detach: bool = False,
           force: bool = False, on_created: Created | None = None, on_progress: Progress | None = None,
           engine: Any = None) -> tuple[str, dict[str, int]]:
    """Create a campaign and run it (or detach from it); its id and counts by state.

    `engine` (a `bl_reservoir.scale.engine.Engine`) lets several campaigns share one cluster.
    """
    from bl_reservoir.algorithms import get_algorithm

    get_algorithm(algorithm)  # unknown names fail here, before any job exists
    if max_attempts < 1:
        raise UsageError(f"--max-attempts must be at least 1, not {max_attempts}")
    uris = expand_inputs(inputs)
    if not uris:
        raise UsageError("no inputs given")
    bucket_uri = _bucket_uri(bucket)
    store = Store(settings.db_url(db, bucket))
    cid = store.create_campaign(algorithm, uris, parameters=list(options), bucket=bucket_uri,
                                max_attempts=max_attempts)
    log.info("campaign %s: %d jobs of %s into %s", cid, len(uris), algorithm, bucket_uri)
    return cid, _run(store, cid, store.list_jobs(cid), scheduler=scheduler, detach=detach, force=force,
                     on_created=on_created, on_progress=on_progress, engine=engine)


def resume(campaign: str, *, db: str | None = None, scheduler: str | None = None, detach: bool = False,
           on_created: Created | None = None, on_progress: Progress | None = None) -> dict[str, int]:
    """Re-submit every job not finished (queued, or `running` on a worker that may be gone).

    Safe after any crash: the runner skips a job whose complete result already exists, so no
    result is written twice, and a task still running on the same scheduler is joined, not copied.
    """
    store = Store(settings.db_url(db))
    store.get_campaign(campaign)
    return _run(store, campaign, store.requeue(campaign, ["queued", "running"]), scheduler=scheduler,
                detach=detach, on_created=on_created, on_progress=on_progress)


def retry(campaign: str, *, db: str | None = None, scheduler: str | None = None, detach: bool = False,
          on_created: Created | None = None, on_progress: Progress | None = None) -> dict[str, int]:
    """Re-submit the failed jobs (their attempts keep counting)."""
    store = Store(settings.db_url(db))
    store.get_campaign(campaign)
    return _run(store, campaign, store.requeue(campaign, ["failed"]), scheduler=scheduler, detach=detach,
                on_created=on_created, on_progress=on_progress)


def cancel(campaign: str, *, db: str | None = None, scheduler: str | None = None) -> int:
    """Cancel the queued and running jobs; tasks on a reachable scheduler are dropped too."""
    store = Store(settings.db_url(db))
    running = store.list_jobs(campaign, state=["queued", "running"])
    n = store.cancel(campaign)
    address = settings.scheduler(scheduler)
    if address and running:
        from distributed import Client, Future

        from bl_reservoir.scale.engine import task_key
        from bl_reservoir.scale.tasks import cancel_event

        with Client(address, timeout="10s") as client:
            cancel_event(campaign, client).set()  # running jobs stop (their workers poll it)
            client.cancel([Future(task_key(job["id"]), client) for job in running], force=True)
    return n


def _run(store: Store, campaign: str, jobs: list[dict], *, scheduler: str | None, detach: bool,
         force: bool = False, on_created: Created | None = None, on_progress: Progress | None = None,
         engine: Any = None) -> dict[str, int]:
    from contextlib import nullcontext

    from bl_reservoir.scale.engine import Engine

    row = store.get_campaign(campaign)
    address = settings.scheduler(scheduler)
    if detach and not address:
        raise UsageError("--detach needs a running scheduler (--scheduler or DASK_SCHEDULER_ADDRESS): "
                         "an embedded cluster ends with this process")
    if not jobs:
        store.close_campaign(campaign)
        return store.campaign_counts(campaign)
    if on_created:
        on_created(campaign, len(jobs))
    with nullcontext(engine) if engine is not None else Engine(address) as engine:
        if detach:
            engine.detach(store, row, jobs, force=force)
            return store.campaign_counts(campaign)
        return engine.run(store, row, jobs, force=force, on_progress=on_progress)
