"""The JSON API (contract C7) and the server-sent event streams the pages listen to."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from bl_reservoir.errors import ReservoirError, UsageError
from bl_reservoir.results import to_jsonable
from bl_reservoir.scale import schema
from bl_reservoir.web import cadences as cadence_views
from bl_reservoir.web import jobs as campaign_views
from bl_reservoir.web import observations as views
from bl_reservoir.web.bucket import NotInBucket, ResultRef, check_names
from bl_reservoir.web.hits import HitFilter
from bl_reservoir.web.security import require_read, require_write

log = logging.getLogger(__name__)

public = APIRouter()
router = APIRouter(dependencies=[Depends(require_read)])
writes = APIRouter(dependencies=[Depends(require_write)])

SSE_POLL_S = 0.5          # how often event streams look at the store
SSE_HEARTBEAT_S = 15.0    # a comment line keeps proxies from closing a quiet stream
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10**9)]
ObsSort = Literal["obs_name", "source", "mjd", "n_hits", "updated", "band"]
Size = Literal["full", "thumb"]
_PNG_CACHE = "private, max-age=3600"


class JobRequest(BaseModel):
    """A campaign: one algorithm over many inputs."""

    algorithm: str = Field(description="package/name, as `bl-reservoir algorithms` lists it",
                           examples=["energy_detection/preprocess_fine"], max_length=200)
    inputs: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(
        min_length=1, max_length=100_000, description="paths or URIs (file, http(s), gs, s3), one per job")
    bucket: str | None = Field(None, max_length=2000, description="results bucket; the server's by default")
    parameters: list[Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=list, max_length=200, description="options given to the algorithm, e.g. ['--snr', '10']")
    max_attempts: int = Field(3, ge=1, le=20)
    force: bool = False


def _state(request: Request) -> Any:
    return request.app.state.web


def _png(request: Request, body: bytes, etag: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": _PNG_CACHE}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="image/png", headers=headers)


# ---------------------------------------------------------------------------- observations

@public.get("/healthz", tags=["status"])
def healthz(request: Request) -> dict[str, Any]:
    """Liveness, and whether the start-up index of the bucket is still running."""
    state = _state(request)
    return {"status": "ok", "bucket": state.bucket_uri, "indexing": state.indexing,
            "writes": bool(state.token), "scheduler": state.scheduler}


@router.get("/api/observations", tags=["observations"])
def list_observations(request: Request, search: Annotated[str | None, Query(max_length=200)] = None,
                      sort: ObsSort = "obs_name", descending: bool = False, limit: Limit = 50,
                      offset: Offset = 0) -> dict[str, Any]:
    """Observations in the index: obs_name, source, MJD, band, algorithms run and hits per algorithm."""
    return views.list_observations(_state(request), search, sort, descending, limit, offset)


@router.get("/api/observations/{obs}", tags=["observations"])
def get_observation(request: Request, obs: str) -> dict[str, Any]:
    """The observation's header and one entry per algorithm result."""
    return views.observation(_state(request), obs)


@router.get("/api/observations/{obs}/{package}/{name}/hits", tags=["observations"])
def list_hits(request: Request, obs: str, package: str, name: str,
              fmin: float | None = Query(None, description="MHz"), fmax: float | None = Query(None, description="MHz"),
              min_snr: float | None = None, min_statistic: float | None = None,
              drift_min: float | None = Query(None, description="Hz/s"),
              drift_max: float | None = Query(None, description="Hz/s"),
              sort: Annotated[str | None, Query(max_length=100)] = None, descending: bool = False,
              limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """The hits table of one result, filtered (inclusive bounds), sorted by any column, paged."""
    where = HitFilter(fmin, fmax, min_snr, min_statistic, drift_min, drift_max)
    return views.hits_page(_state(request), obs, package, name, where, sort, descending, limit, offset)


@router.get("/api/observations/{obs}/{package}/{name}/hits/{i}.png", tags=["pictures"],
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def hit_png(request: Request, obs: str, package: str, name: str, i: int, size: Size = "full") -> Response:
    """Waterfall picture of hit `i` (`size=thumb` for a small axis-less thumbnail)."""
    return _png(request, *views.hit_picture(_state(request), obs, package, name, i, size))


@router.get("/api/observations/{obs}/{package}/{name}/hits/{i}", tags=["observations"])
def get_hit(request: Request, obs: str, package: str, name: str, i: int) -> dict[str, Any]:
    """Every field of hit `i`, its neighbours and the same signal found by other algorithms."""
    return views.hit(_state(request), obs, package, name, i)


@router.get("/api/observations/{obs}/{package}/{name}/overview.png", tags=["pictures"],
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def overview_png(request: Request, obs: str, package: str, name: str) -> Response:
    """Hits across the band: frequency against SNR or statistic, coloured by drift rate."""
    return _png(request, *views.overview_picture(_state(request), obs, package, name))


@router.get("/api/hits", tags=["observations"])
def search_hits(request: Request, fmin: float | None = None, fmax: float | None = None,
                min_snr: float | None = None, min_statistic: float | None = None,
                algorithm: Annotated[str | None, Query(max_length=200)] = None,
                observation: Annotated[str | None, Query(max_length=500)] = None,
                drift_min: float | None = None, drift_max: float | None = None,
                limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """Hits across every indexed observation, by frequency (MHz)."""
    items = views.search_hits(_state(request), fmin=fmin, fmax=fmax, min_snr=min_snr, min_statistic=min_statistic,
                              algorithm=algorithm, observation=observation, drift_min=drift_min,
                              drift_max=drift_max, limit=limit, offset=offset)
    return {"offset": offset, "limit": limit, "items": items}


@router.get("/api/cadences", tags=["cadences"])
def list_cadences(request: Request, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Cadences (C8), newest first: target, MJD, band, files, events, and the state of their events stage."""
    return cadence_views.list_cadences(_state(request), limit, offset)


@router.get("/api/cadences/{cadence_id}", tags=["cadences"])
def get_cadence(request: Request, cadence_id: str) -> dict[str, Any]:
    """One cadence: its six observations (ON first) and each candidate event with the hits it joins."""
    return cadence_views.cadence(_state(request), cadence_id)


@router.get("/api/cadences/{cadence_id}/events/{n}.png", tags=["pictures"], response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def event_png(request: Request, cadence_id: str, n: int) -> Response:
    """Event `n`'s six waterfalls stacked in time on one colour scale, the drift path drawn beside the track."""
    return _png(request, *cadence_views.event_picture(_state(request), cadence_id, n))


@router.get("/api/sensitivity", tags=["observations"])
def sensitivity_reports(request: Request) -> dict[str, Any]:
    """Saved sensitivity reports (`<bucket>/sensitivity/<report>/`)."""
    return {"reports": _state(request).bucket.reports()}


# ---------------------------------------------------------------------------- campaigns and jobs

@writes.post("/api/jobs", status_code=201, tags=["jobs"],
             responses={401: {"description": "missing or wrong token"}, 403: {"description": "writes are off"}})
def submit(request: Request, body: JobRequest) -> dict[str, Any]:
    """Start a campaign of `algorithm` over `inputs` (needs `Authorization: Bearer <token>`)."""
    from bl_reservoir.io.fetch import INPUT_SCHEMES, scheme
    from bl_reservoir.storage import open_bucket

    state = _state(request)
    bucket = body.bucket or state.bucket_uri
    try:
        open_bucket(bucket)
        for uri in body.inputs:
            if any(ord(c) < 32 for c in uri):
                raise UsageError(f"input {uri!r} contains control characters")
            if scheme(uri.strip()) not in INPUT_SCHEMES:
                raise UsageError(f"input {uri}: scheme {scheme(uri)}:// is not supported "
                                 f"(use a path, {', '.join(s + '://' for s in INPUT_SCHEMES)})")
        cid = state.submitter.submit(body.algorithm, [u.strip() for u in body.inputs], bucket=bucket,
                                     parameters=body.parameters, max_attempts=body.max_attempts, force=body.force)
    except ReservoirError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"campaign": cid, "jobs": [j["id"] for j in state.jobs.list_jobs(cid)]}


@writes.post("/api/reindex", tags=["observations"])
def reindex(request: Request) -> dict[str, Any]:
    """Scan the bucket and index every complete result (needs the token)."""
    return {"indexed": _state(request).reindex()}


@router.get("/api/jobs", tags=["jobs"])
def list_jobs(request: Request, campaign: Annotated[str | None, Query(max_length=32)] = None,
              state: Literal[schema.JOB_STATES] | None = None,  # type: ignore[valid-type]
              limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """Jobs (optionally of one campaign, in one state): state, attempts, worker, timings, error."""
    rows = _state(request).jobs.list_jobs(campaign=campaign, state=state, limit=limit, offset=offset)
    return {"offset": offset, "limit": limit, "items": to_jsonable(rows)}


def _job(request: Request, job_id: str) -> dict[str, Any]:
    try:
        return _state(request).jobs.get_job(job_id)
    except UsageError:
        raise HTTPException(404, f"no job {job_id}") from None


@router.get("/api/jobs/{job_id}", tags=["jobs"])
def get_job(request: Request, job_id: str) -> dict[str, Any]:
    """One job with its events and the log of its result (`log.txt`)."""
    state = _state(request)
    job = _job(request, job_id)
    events = state.jobs.job_events(job_id)
    return to_jsonable({**job, "events": events, "log": _log_of(state, job)})


def _log_of(state: Any, job: dict[str, Any]) -> str | None:
    uri = (job.get("result_uri") or "").rstrip("/")
    parts = uri.rsplit("/", 3)
    if len(parts) != 4:
        return None
    try:
        check_names(*parts[1:])
        return state.bucket_at(parts[0]).log_text(ResultRef(*parts[1:]))
    except (NotInBucket, ReservoirError, OSError, ValueError):
        return None


@router.get("/api/campaigns", tags=["jobs"])
def list_campaigns(request: Request, limit: Limit = 50) -> dict[str, Any]:
    """The newest campaigns with job counts per state and progress."""
    return {"items": to_jsonable(campaign_views.campaigns_snapshot(_state(request).jobs, limit))}


def _campaign(request: Request, campaign_id: str) -> dict[str, Any]:
    try:
        return campaign_views.campaign_snapshot(_state(request).jobs, campaign_id)
    except UsageError:
        raise HTTPException(404, f"no campaign {campaign_id}") from None


@router.get("/api/campaigns/events", tags=["jobs"], response_class=StreamingResponse)
async def campaigns_events(request: Request) -> StreamingResponse:
    """Server-sent events: the newest campaigns' progress, each time it changes."""
    store = _state(request).jobs
    return _stream(request, lambda: campaign_views.campaigns_snapshot(store), lambda _: False)


@router.get("/api/campaigns/{campaign_id}", tags=["jobs"])
def get_campaign(request: Request, campaign_id: str) -> dict[str, Any]:
    """One campaign with counts, progress and every job."""
    return to_jsonable(_campaign(request, campaign_id))


@router.get("/api/campaigns/{campaign_id}/events", tags=["jobs"], response_class=StreamingResponse)
async def campaign_events(request: Request, campaign_id: str) -> StreamingResponse:
    """Server-sent events: the campaign's snapshot each time it changes; ends when it is over."""
    await run_in_threadpool(_campaign, request, campaign_id)
    store = _state(request).jobs
    return _stream(request, lambda: campaign_views.campaign_snapshot(store, campaign_id),
                   lambda snap: snap["state"] != "active" and snap["progress"]["ended"] == snap["progress"]["total"])


@router.get("/api/jobs/{job_id}/events", tags=["jobs"], response_class=StreamingResponse)
async def job_events(request: Request, job_id: str) -> StreamingResponse:
    """Server-sent events: the job's events as they are recorded (resumes after `Last-Event-ID`)."""
    await run_in_threadpool(_job, request, job_id)
    store = _state(request).jobs
    try:
        after = int(request.headers.get("last-event-id", "0"))
    except ValueError:
        after = 0

    async def events() -> AsyncIterator[bytes]:
        nonlocal after
        heartbeat = _Heartbeat()
        while not await request.is_disconnected():
            found = await run_in_threadpool(store.job_events, job_id, after)
            for event in found:
                after = event["id"]
                yield heartbeat.sent(_sse(to_jsonable(event), kind=event["kind"], event_id=after))
            if not found:
                job = await run_in_threadpool(store.get_job, job_id)
                if job["state"] in schema.ENDED:
                    yield _sse(to_jsonable(job), kind="end")
                    return
            await asyncio.sleep(SSE_POLL_S)
            if heartbeat.due():
                yield heartbeat.sent(b": ping\n\n")

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _sse(data: Any, kind: str | None = None, event_id: int | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if kind:
        lines.append(f"event: {kind}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


class _Heartbeat:
    """Knows when a quiet stream is due a comment line."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def sent(self, message: bytes) -> bytes:
        self.last = time.monotonic()
        return message

    def due(self) -> bool:
        return time.monotonic() - self.last >= SSE_HEARTBEAT_S


def _stream(request: Request, snapshot: Callable[[], Any], done: Callable[[Any], bool]) -> StreamingResponse:
    """An SSE stream sending `snapshot()` whenever it changes, until `done(snapshot)` or disconnect."""

    async def events() -> AsyncIterator[bytes]:
        last = None
        heartbeat = _Heartbeat()
        while not await request.is_disconnected():
            snap = to_jsonable(await run_in_threadpool(snapshot))
            if snap != last:
                last = snap
                yield heartbeat.sent(_sse(snap))
            if done(snap):
                yield _sse(snap, kind="end")
                return
            await asyncio.sleep(SSE_POLL_S)
            if heartbeat.due():
                yield heartbeat.sent(b": ping\n\n")

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("/api/workers", tags=["jobs"])
def workers(request: Request) -> dict[str, Any]:
    """The engine's Dask workers: CPU, memory, current job, algorithms served."""
    state = _state(request)
    return to_jsonable(state.workers.describe(state.jobs))


router.include_router(writes)
