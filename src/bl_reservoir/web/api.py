"""The JSON API (contract C7), with the server-sent event streams the pages listen to (`streams`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from bl_reservoir.errors import ReservoirError, UsageError
from bl_reservoir.results import to_jsonable
from bl_reservoir.scale import schema
from bl_reservoir.web import cadences as cadence_views
from bl_reservoir.web import downloads
from bl_reservoir.web import jobs as campaign_views
from bl_reservoir.web import observations as views
from bl_reservoir.web.bucket import NotInBucket, ResultRef, check_names
from bl_reservoir.web.hits import HitFilter
from bl_reservoir.web.params import hit_filter, text
from bl_reservoir.web.pictures import PictureTooLarge
from bl_reservoir.web.security import require_control, require_read, require_write, shown_to
from bl_reservoir.web.streams import SSE_POLL_S, Changed, Heartbeat, sse, stream

log = logging.getLogger(__name__)

public = APIRouter()
router = APIRouter(dependencies=[Depends(require_read)])
writes = APIRouter(dependencies=[Depends(require_write)])
#: The campaign buttons: the token, or the login cookie from our own pages (`security.require_control`).
control = APIRouter(dependencies=[Depends(require_control)])
_CONTROL_ANSWERS = {401: {"description": "no token, and no login cookie from our page"},
                    403: {"description": "writes are off"}, 404: {"description": "no such campaign"},
                    503: {"description": "the Dask scheduler does not answer"}}

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
def list_hits(request: Request, obs: str, package: str, name: str, where: Annotated[HitFilter, Depends(hit_filter)],
              sort: Annotated[str | None, Query(max_length=100)] = None, descending: bool = False,
              limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """The hits table of one result, filtered (inclusive bounds; blank ones are not given), sorted by any
    column, paged."""
    return views.hits_page(_state(request), obs, package, name, where, sort, descending, limit, offset)


@router.get("/api/observations/{obs}/{package}/{name}/hits.csv", tags=["downloads"], response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def hits_csv(request: Request, obs: str, package: str, name: str, where: Annotated[HitFilter, Depends(hit_filter)],
             sort: Annotated[str | None, Query(max_length=100)] = None, descending: bool = False) -> Response:
    """Every hit of one result that passes the filters, as CSV (with its row number `i`), in the table's order."""
    bucket, ref, _, version = views.result(_state(request), obs, package, name)
    body, filename = downloads.hits_csv(bucket, ref, version, where, sort, descending)
    return Response(body, media_type="text/csv; charset=utf-8", headers=downloads.attachment(filename))


@router.get("/api/observations/{obs}/{package}/{name}/hits.dat", tags=["downloads"],
            response_class=StreamingResponse, responses={200: {"content": {"text/plain": {}}}})
def hits_dat(request: Request, obs: str, package: str, name: str) -> StreamingResponse:
    """The result's turboSETI `.dat` file (dedoppler results), as stored."""
    return _stored(request, obs, package, name, downloads.DAT)


@router.get("/api/observations/{obs}/{package}/{name}/filtered.npy", tags=["downloads"],
            response_class=StreamingResponse, responses={200: {"content": {"application/octet-stream": {}}}})
def stamps_npy(request: Request, obs: str, package: str, name: str) -> StreamingResponse:
    """The result's stamps, `filtered.npy` as stored: float32 (n_hits, n_time, width); row i is hit i."""
    return _stored(request, obs, package, name, downloads.STAMPS)


def _stored(request: Request, obs: str, package: str, name: str, kind: str) -> StreamingResponse:
    bucket, ref, manifest, _ = views.result(_state(request), obs, package, name)
    found = downloads.stored_file(bucket, ref, manifest, kind)
    return StreamingResponse(found.chunks, media_type=found.media_type, headers=found.headers)


@router.get("/api/observations/{obs}/{package}/{name}/hits/{i}.png", tags=["pictures"],
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def hit_png(request: Request, obs: str, package: str, name: str, i: int, size: Size = "full") -> Response:
    """Waterfall picture of hit `i` (`size=thumb` for a small axis-less thumbnail); 422 for a stamp too large."""
    try:
        return _png(request, *views.hit_picture(_state(request), obs, package, name, i, size))
    except PictureTooLarge as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/api/observations/{obs}/{package}/{name}/hits/{i}", tags=["observations"])
def get_hit(request: Request, obs: str, package: str, name: str, i: int) -> dict[str, Any]:
    """Every field of hit `i`, its neighbours and the same signal found by other algorithms."""
    return views.hit(_state(request), obs, package, name, i)


@router.get("/api/observations/{obs}/{package}/{name}/overview.png", tags=["pictures"],
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def overview_png(request: Request, obs: str, package: str, name: str) -> Response:
    """Hits across the band: frequency against SNR or statistic, coloured by drift rate."""
    return _png(request, *views.overview_picture(_state(request), obs, package, name))


@router.get("/api/observations/{obs}/{package}/{name}/histogram.png", tags=["pictures"],
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def histogram_png(request: Request, obs: str, package: str, name: str) -> Response:
    """How many hits fall in each part of the band (a histogram over frequency)."""
    return _png(request, *views.histogram_picture(_state(request), obs, package, name))


@router.get("/api/hits", tags=["observations"])
def search_hits(request: Request, where: Annotated[HitFilter, Depends(hit_filter)],
                algorithm: text(200) = None,
                observation: text(500) = None,
                limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """Hits across every indexed observation, by frequency (MHz); blank parameters are not given."""
    items = views.search_hits(_state(request), **where.query(), algorithm=algorithm, observation=observation,
                              limit=limit, offset=offset)
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
             responses={401: {"description": "missing or wrong token"}, 403: {"description": "writes are off"},
                        503: {"description": "the Dask scheduler does not answer: nothing was created"}})
def submit(request: Request, body: JobRequest) -> dict[str, Any]:
    """Start a campaign of `algorithm` over `inputs` (needs `Authorization: Bearer <token>`)."""
    from bl_reservoir.io.fetch import INPUT_SCHEMES, scheme
    from bl_reservoir.scale.security import SchedulerUnreachable
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
    except SchedulerUnreachable as exc:
        raise HTTPException(503, str(exc)) from None
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
    """Jobs (optionally of one campaign, in one state): state, attempts, worker, timings, error (local paths
    shortened to `…/name` without the token, on a server that has one)."""
    rows = _state(request).jobs.list_jobs(campaign=campaign, state=state, limit=limit, offset=offset)
    return {"offset": offset, "limit": limit, "items": shown_to(request, to_jsonable(rows))}


def _job(request: Request, job_id: str) -> dict[str, Any]:
    try:
        return _state(request).jobs.get_job(job_id)
    except UsageError:
        raise HTTPException(404, f"no job {job_id}") from None


@router.get("/api/jobs/{job_id}", tags=["jobs"])
def get_job(request: Request, job_id: str) -> dict[str, Any]:
    """One job with its events and the log of its result (`log.txt`); local paths in its error, events and
    log shortened to `…/name` without the token, on a server that has one."""
    state = _state(request)
    job = _job(request, job_id)
    events = state.jobs.job_events(job_id)
    return shown_to(request, to_jsonable({**job, "events": events, "log": _log_of(state, job)}))


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
    return {"items": shown_to(request, to_jsonable(campaign_views.campaigns_snapshot(_state(request).jobs, limit)))}


def _campaign(request: Request, campaign_id: str) -> dict[str, Any]:
    try:
        return campaign_views.campaign_snapshot(_state(request).jobs, campaign_id)
    except UsageError:
        raise HTTPException(404, f"no campaign {campaign_id}") from None


@router.get("/api/campaigns/events", tags=["jobs"], response_class=StreamingResponse)
async def campaigns_events(request: Request) -> StreamingResponse:
    """Server-sent events: the newest campaigns' progress, each time it changes."""
    store = _state(request).jobs
    return stream(request, Changed(lambda: shown_to(request, campaign_views.campaigns_snapshot(store))),
                   lambda _: False)


@router.get("/api/campaigns/{campaign_id}", tags=["jobs"])
def get_campaign(request: Request, campaign_id: str) -> dict[str, Any]:
    """One campaign with counts, progress and every job."""
    return shown_to(request, to_jsonable(_campaign(request, campaign_id)))


@control.post("/api/campaigns/{campaign_id}/cancel", tags=["jobs"], responses=_CONTROL_ANSWERS)
def cancel_campaign(request: Request, campaign_id: str) -> dict[str, Any]:
    """Cancel the campaign's queued and running jobs, on the scheduler too (needs the token, or the login
    cookie from the campaign's page)."""
    from bl_reservoir.scale.security import SchedulerUnreachable

    _campaign(request, campaign_id)
    try:
        n = _state(request).submitter.cancel(campaign_id)
    except SchedulerUnreachable as exc:
        raise HTTPException(503, f"cancelled in the job store, but the scheduler did not answer ({exc.reason}): "
                                 "jobs running there stop at their next look at the store") from None
    return {"campaign": campaign_id, "cancelled": n}


@control.post("/api/campaigns/{campaign_id}/{action}", tags=["jobs"], responses=_CONTROL_ANSWERS)
def rerun_campaign(request: Request, campaign_id: str, action: Literal["retry", "resume"]) -> dict[str, Any]:
    """`retry`: run the failed jobs (and failed events stages) again; `resume`: run the unfinished ones
    (queued, running on a worker that may be gone, lost). Needs the token, or the login cookie from the
    campaign's page."""
    from bl_reservoir.scale.security import SchedulerUnreachable

    _campaign(request, campaign_id)
    try:
        n = _state(request).submitter.rerun(action, campaign_id)
    except SchedulerUnreachable as exc:
        raise HTTPException(503, str(exc)) from None
    except ReservoirError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"campaign": campaign_id, "action": action, "jobs": n}


@router.get("/api/campaigns/{campaign_id}/events", tags=["jobs"], response_class=StreamingResponse)
async def campaign_events(request: Request, campaign_id: str) -> StreamingResponse:
    """Server-sent events: the campaign (`full`: its first 1,000 jobs), then what changed each time it does
    (`full` false: state, counts, progress and the jobs whose rows changed); ends when it is over."""
    await run_in_threadpool(_campaign, request, campaign_id)
    feed = campaign_views.CampaignFeed(_state(request).jobs, campaign_id)
    sent = False

    def poll() -> dict[str, Any] | None:
        nonlocal sent
        message = feed.changes() if sent else feed.first()
        sent = True
        return None if message is None else shown_to(request, message)

    return stream(request, poll,
                   lambda m: m["state"] != "active" and m["progress"]["ended"] == m["progress"]["total"],
                   ending=lambda m: {**m, "full": False, "jobs": []})


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
        heartbeat = Heartbeat()
        while not await request.is_disconnected():
            found = await run_in_threadpool(store.job_events, job_id, after)
            for event in found:
                after = event["id"]
                yield heartbeat.sent(sse(shown_to(request, to_jsonable(event)), kind=event["kind"], event_id=after))
            if not found:
                job = await run_in_threadpool(store.get_job, job_id)
                if job["state"] in schema.ENDED:
                    yield sse(shown_to(request, to_jsonable(job)), kind="end")
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
router.include_router(control)
