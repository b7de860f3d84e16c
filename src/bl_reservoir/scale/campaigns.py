"""Campaigns: submit one algorithm over many inputs, resume, retry, cancel.

Every function takes settings as flags (None: environment, then default, via
`bl_reservoir.settings`) and returns plain data; the CLI adds the progress bar and the table.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bl_reservoir import settings
from bl_reservoir.errors import UsageError
from bl_reservoir.scale.event_stage import EVENTS_ALGORITHM, EventSettings, plan_cadences
from bl_reservoir.scale.jobs import JobStore
from bl_reservoir.scale.outcomes import Stores
from bl_reservoir.scale.schema import ACTIVE

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, int]], None]   # counts by state, called while a campaign runs
Created = Callable[[str, int], None]          # campaign id and number of jobs submitted
Planned = Callable[[list, list], None]        # the campaign's cadences and the inputs refused a cadence
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
            out.extend(_absolute(Path(p)) for p in matched)
        else:
            path = Path(item).expanduser()
            if not path.exists():
                raise UsageError(f"{item}: no such file")
            out.append(_absolute(path))
    return out


def _absolute(path: Path) -> str:
    """An absolute path that keeps the name the user gave: a symlink `obs_1.h5 -> ho.h5` stays `obs_1.h5`,
    whose result is `<bucket>/obs_1/...` (resolving it would name the result after the link's target)."""
    return os.path.abspath(path)


def _bucket_uri(flag: str | None) -> str:
    uri = settings.bucket(flag)
    if "://" in uri and not uri.startswith("file://"):
        return uri
    return str(Path(uri.removeprefix("file://")).expanduser().resolve())  # workers may run elsewhere


# -- commands ------------------------------------------------------------------------------------

def submit(algorithm: str, inputs: Sequence[str], *, options: Sequence[str] = (), bucket: str | None = None,
           db: str | None = None, scheduler: str | None = None, max_attempts: int = 3, detach: bool = False,
           force: bool = False, timeout_s: float | None = None, max_result_bytes: int | None = None,
           events: EventSettings | None = None,
           on_created: Created | None = None, on_planned: Planned | None = None,
           on_progress: Progress | None = None, engine: Any = None,
           dashboard: bool = False) -> tuple[str, dict[str, int]]:
    """Create a campaign and run it (or detach from it); its id and counts by state.

    A campaign of `dedoppler/search` also finds its cadences (`events`: from a list, else from the
    inputs' headers) and runs each one's events stage once its six jobs have succeeded.
    `timeout_s` and `max_result_bytes` bound each job (None: the runner's defaults). `engine` (a
    `bl_reservoir.scale.engine.Engine`) lets several campaigns share one cluster; without one, the
    scheduler is reached (or the embedded cluster started, with its dashboard if `dashboard`) before
    anything is created, so an unreachable scheduler leaves no campaign that never runs.
    """
    from bl_reservoir.algorithms import get_algorithm

    get_algorithm(algorithm)  # unknown names fail here, before any job exists
    if max_attempts < 1:
        raise UsageError(f"--max-attempts must be at least 1, not {max_attempts}")
    if timeout_s is not None and not timeout_s > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, not {timeout_s:g}")
    if max_result_bytes is not None and max_result_bytes < 1:
        raise UsageError(f"--max-result-size must be at least 1 byte, not {max_result_bytes}")
    address = settings.scheduler(scheduler)
    _check_detach(detach, address)
    events = events or EventSettings()
    uris = expand_inputs(inputs)
    if events.cadences is not None:
        given = [[_one_input(item) for item in six] for six in events.cadences]
        events = replace(events, cadences=tuple(tuple(six) for six in given))
        uris += [uri for six in given for uri in six if uri not in uris]
    if not uris:
        raise UsageError("no inputs given")
    planned: tuple[list, list] = ([], [])
    if algorithm == EVENTS_ALGORITHM and events.enabled:
        planned = plan_cadences(uris, events)
    bucket_uri = _bucket_uri(bucket)
    stores = Stores.open(settings.db_url(db, bucket))
    with _engine(engine, address, dashboard) as running:
        cid = stores.jobs.create_campaign(algorithm, uris, parameters=list(options), bucket=bucket_uri,
                                          max_attempts=max_attempts, timeout_s=timeout_s,
                                          max_result_bytes=max_result_bytes)
        jobs = stores.jobs.list_jobs(cid)
        stores.cadences.add(cid, bucket_uri, planned[0], jobs={j["input_uri"]: j["id"] for j in jobs},
                            parameters=events.parameters)
        log.info("campaign %s: %d jobs of %s into %s, %d cadences", cid, len(uris), algorithm, bucket_uri,
                 len(planned[0]))
        if on_planned:
            on_planned(*planned)
        return cid, _run(stores, cid, jobs, scheduler=address, detach=detach, force=force,
                         on_created=on_created, on_progress=on_progress, engine=running)


def _one_input(item: str) -> str:
    found = expand_inputs([item])
    if len(found) != 1:
        raise UsageError(f"{item}: a cadence list names one input per entry, not a pattern of {len(found)}")
    return found[0]


def resume(campaign: str, *, db: str | None = None, scheduler: str | None = None, detach: bool = False,
           on_created: Created | None = None, on_progress: Progress | None = None) -> dict[str, int]:
    """Re-submit every job not finished (queued, or `running` on a worker that may be gone, or failed as
    lost when its heartbeats stopped: `jobs.LOST`).

    Safe after any crash: the runner skips a job whose complete result already exists, so no
    result is written twice, and a task still running on the same scheduler is joined, not copied.
    """
    stores = Stores.open(settings.db_url(db))
    stores.jobs.get_campaign(campaign)
    stores.cadences.requeue(campaign, ["queued", "running"])
    return _run(stores, campaign, stores.jobs.requeue(campaign, ACTIVE, lost=True), scheduler=scheduler,
                detach=detach, on_created=on_created, on_progress=on_progress)


def retry(campaign: str, *, db: str | None = None, scheduler: str | None = None, detach: bool = False,
          on_created: Created | None = None, on_progress: Progress | None = None) -> dict[str, int]:
    """Re-submit the failed jobs (their attempts keep counting) and the failed events stages."""
    stores = Stores.open(settings.db_url(db))
    stores.jobs.get_campaign(campaign)
    stores.cadences.requeue(campaign, ["failed"])
    return _run(stores, campaign, stores.jobs.requeue(campaign, ["failed"]), scheduler=scheduler, detach=detach,
                on_created=on_created, on_progress=on_progress)


def cancel(campaign: str, *, db: str | None = None, scheduler: str | None = None) -> int:
    """Cancel the queued and running jobs; tasks on a reachable scheduler are dropped too."""
    store = JobStore(settings.db_url(db))
    running = store.list_jobs(campaign, state=ACTIVE)
    n = store.cancel(campaign)
    address = settings.scheduler(scheduler)
    if address and running:
        from distributed import Future

        from bl_reservoir.scale.security import connect
        from bl_reservoir.scale.tasks import cancel_event, task_key

        with connect(address, timeout_s=10.0) as client:
            cancel_event(campaign, client).set()  # running jobs stop (their workers poll it)
            client.cancel([Future(task_key(job["id"]), client) for job in running], force=True)
    return n


def _run(stores: Stores, campaign: str, jobs: list[dict], *, scheduler: str | None, detach: bool,
         force: bool = False, on_created: Created | None = None, on_progress: Progress | None = None,
         engine: Any = None) -> dict[str, int]:
    store = stores.jobs
    row = store.get_campaign(campaign)
    address = settings.scheduler(scheduler)
    _check_detach(detach, address)
    if not jobs and not stores.cadences.count_cadences(campaign, state="waiting"):
        store.close_campaign(campaign)
        return store.campaign_counts(campaign)
    if on_created:
        on_created(campaign, len(jobs))
    with _engine(engine, address) as engine:
        if detach:
            engine.detach(store, row, jobs, force=force)
            return store.campaign_counts(campaign)
        return engine.run(stores, row, jobs, force=force, on_progress=on_progress)


def _check_detach(detach: bool, address: str | None) -> None:
    if detach and not address:
        raise UsageError("--detach needs a running scheduler (--scheduler or DASK_SCHEDULER_ADDRESS): "
                         "an embedded cluster ends with this process")


def _engine(engine: Any, address: str | None, dashboard: bool = False) -> Any:
    """`engine` as a context that leaves it open, or a new `Engine` (closed on exit)."""
    from contextlib import nullcontext

    from bl_reservoir.scale.engine import Engine

    return nullcontext(engine) if engine is not None else Engine(address, dashboard=dashboard)
