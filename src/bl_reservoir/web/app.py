"""The FastAPI application: one `WebState` (bucket, job store, caches, submitter) behind the routes.

`create_app` resolves settings once (flags, then environment, contract C5) and builds the app;
`bl-reservoir serve` runs it under uvicorn. Observations are listed from the hits index;
the bucket is scanned only by an explicit reindex, or at start-up when the index is empty.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from bl_reservoir import __version__, settings
from bl_reservoir.errors import ReservoirError
from bl_reservoir.web.bucket import _LRU, Bucket, NotInBucket, ResultRef, check_names
from bl_reservoir.web.pictures import PictureCache, Renderer

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


@dataclass
class WebState:
    """Everything the routes share; thread-safe (the stores and caches lock themselves)."""

    bucket_uri: str
    jobs: Any       # scale.jobs.JobStore
    index: Any      # scale.index.HitIndex
    cadences: Any   # scale.cadences.CadenceStore
    token: str | None
    auth_read: bool
    scheduler: str | None
    pictures: PictureCache = field(default_factory=PictureCache)
    renderer: Renderer = field(default_factory=Renderer)
    telescopes: _LRU = field(default_factory=lambda: _LRU(4096))   # (obs, indexed time) -> (telescope,)
    indexing: bool = False
    _buckets: dict[str, Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    submitter: Any = None
    workers: Any = None

    @property
    def bucket(self) -> Bucket:
        return self.bucket_at(self.bucket_uri)

    def bucket_at(self, uri: str) -> Bucket:
        """The `Bucket` reader of a bucket URI (one per URI, made on first use)."""
        with self._lock:
            found = self._buckets.get(uri)
            if found is None:
                found = self._buckets[uri] = Bucket(uri)
            return found

    def locate(self, obs: str, package: str, name: str,
               results: list[dict[str, Any]] | None = None) -> tuple[Bucket, ResultRef]:
        """The bucket holding a result, from the store's index (campaigns may use other buckets; `results`:
        the observation's indexed results, when the caller has them), else the default bucket; raises
        `NotInBucket` for unsafe names."""
        check_names(obs, package, name)
        ref = ResultRef(obs, package, name)
        if results is None:
            results = (self.index.get_observation(obs) or {}).get("results", [])
        uri = next((r["result_uri"] for r in results if r["algorithm"] == ref.algorithm), None)
        suffix = f"/{obs}/{package}/{name}"
        if uri and uri.rstrip("/").endswith(suffix):
            return self.bucket_at(uri.rstrip("/")[: -len(suffix)] or "/"), ref
        return self.bucket, ref

    def reindex(self) -> int:
        """Scan the default bucket and index every complete result in the store; results indexed."""
        bucket = self.bucket
        self.indexing = True
        n = 0
        try:
            for ref in bucket.scan():
                try:
                    _, version = bucket.manifest(ref)
                    self.index.index_result(None, ref.obs, ref.algorithm, bucket.result_uri(ref),
                                            bucket.header(ref, version), bucket.hits(ref, version))
                    n += 1
                except (NotInBucket, ReservoirError, ValueError, OSError) as exc:
                    log.warning("%s: not indexed (%s)", bucket.result_uri(ref), exc)
            n_cadences = self._reindex_cadences(bucket)
        finally:
            self.indexing = False
        log.info("indexed %d results and %d cadences from %s", n, n_cadences, self.bucket_uri)
        return n

    def _reindex_cadences(self, bucket: Bucket) -> int:
        """Restore each cadence whose events folder is complete in the bucket (its manifest names the six
        observations, `events.parquet` holds the events); the indexed observations give target and band."""
        from bl_reservoir.io.cadence import Cadence, ObservationSummary
        from bl_reservoir.scale.event_stage import event_records
        from bl_reservoir.storage import events_uri

        n = 0
        for cadence_id, manifest, events, pictures in bucket.cadences():
            try:
                members = manifest["cadence"]["members"]
                summaries = []
                for m in members:
                    row = self.index.get_observation(m["obs_name"]) or {}
                    summaries.append(ObservationSummary(m["input"], row.get("source") or "", row.get("mjd") or 0.0,
                                                        row.get("fmin_mhz") or 0.0, row.get("fmax_mhz") or 0.0))
                records = event_records(events, [m["obs_name"] for m in members], pictures)
                self.cadences.add(manifest.get("campaign"), bucket.uri, [Cadence(tuple(summaries))], jobs={},
                                  parameters=manifest.get("parameters") or {})
                self.cadences.finish(cadence_id, "succeeded", n_events=len(records),
                                     events_uri=events_uri(bucket.uri, cadence_id), events=records)
                n += 1
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("%s: cadence %s not indexed (%s)", bucket.uri, cadence_id, exc)
        return n


def _problem(error: dict[str, Any]) -> str:
    """One line of a request validation error: `page: Input should be a valid integer (given 'x')`."""
    where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
    given = error.get("input")
    shown = f" (given {given!r})" if isinstance(given, (str, int, float)) and len(str(given)) <= 80 else ""
    return f"{where}: {error.get('msg', 'not valid')}{shown}"


def _offline_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from assets shipped with the package (fastapi-offline): they work where
    no CDN can be reached, and the page loads no script from elsewhere."""
    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.responses import HTMLResponse

    assets = "/docs-assets"
    app.mount(assets, StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs-assets")
    favicon = "/static/favicon.svg"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API",
                                   swagger_js_url=f"{root}{assets}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{assets}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{favicon}",
                                   oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url)

    @app.get(app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API",
                              redoc_js_url=f"{root}{assets}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{favicon}", with_google_fonts=False)


def _warm_imports() -> None:
    """Import what the first picture and table need now, not during a user's first request (~1-2 s)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.backends.backend_agg
    import matplotlib.figure
    import pyarrow.parquet  # noqa: F401

    import bl_reservoir.energy_detection.detect  # noqa: F401  (the observation page's bands)


def create_app(bucket: str | None = None, db: str | None = None, token: str | None = None,
               auth_read: bool = False, scheduler: str | None = None, index_on_start: bool = True,
               picture_cache_size: int = 1024, render_processes: int = 0,
               max_body_bytes: int | None = None) -> FastAPI:
    """The web app over `bucket` and the job store at `db` (flags, then environment, then defaults).

    `token=None` takes `BL_RESERVOIR_TOKEN`; an empty string turns writes off. `picture_cache_size`
    PNGs are kept in memory (0 renders every request: the benchmark's anchor); `render_processes`
    > 0 draws full waterfalls in that many processes (0: in the request's thread). A request body over
    `max_body_bytes` (default `security.MAX_BODY_BYTES`, 1 MiB) is refused with 413 before it is read.
    """
    from bl_reservoir.scale.outcomes import Stores

    bucket_uri = settings.bucket(bucket)
    stores = Stores.open(settings.db_url(db, bucket_uri))
    state = WebState(bucket_uri=bucket_uri, jobs=stores.jobs, index=stores.index, cadences=stores.cadences,
                     token=settings.token() if token is None else (token or None), auth_read=auth_read,
                     scheduler=settings.scheduler(scheduler), pictures=PictureCache(picture_cache_size),
                     renderer=Renderer(render_processes))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=_warm_imports, name="bl-reservoir-warm", daemon=True).start()
        if index_on_start and state.index.count_observations() == 0:
            state.indexing = True
            app.state.indexer = threading.Thread(target=state.reindex, name="bl-reservoir-reindex", daemon=True)
            app.state.indexer.start()
        yield
        state.submitter.close()
        state.renderer.close()
        state.workers.close()
        state.jobs.close()   # the three stores share its engine

    app = FastAPI(title="BL@Scale", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Results of SETI searches over Breakthrough Listen observations, and the campaigns "
                              "that make them. Writes need `Authorization: Bearer <BL_RESERVOIR_TOKEN>`.")
    from bl_reservoir.web.jobs import Submitter
    from bl_reservoir.web.workers import WorkerView

    state.submitter = Submitter(state.jobs.url, state.scheduler)
    state.workers = WorkerView(state.scheduler)
    app.state.web = state
    app.state.indexer = None

    from bl_reservoir.web import api, pages
    from bl_reservoir.web.security import MAX_BODY_BYTES, BodyLimitMiddleware, GuardMiddleware

    app.include_router(api.public)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _offline_docs(app)
    # the last added runs first: the guard's headers go on the body limit's 413 too
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES if max_body_bytes is None else max_body_bytes)
    app.add_middleware(GuardMiddleware)

    @app.exception_handler(NotInBucket)
    async def _not_in_bucket(request: Request, exc: NotInBucket) -> Response:
        log.debug("404 %s (%s)", request.url.path, exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return pages.render(request, "404.html", status_code=404)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        """The API answers bad parameters with JSON; a page with a page saying which parameter and why."""
        if request.url.path.startswith("/api/"):
            return await request_validation_exception_handler(request, exc)
        return pages.render(request, "error.html", status_code=422, title="Bad request",
                            problems=[_problem(e) for e in exc.errors()])

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and not request.url.path.startswith(("/api/", "/static/")):
            return await _not_in_bucket(request, NotInBucket(request.url.path))
        return await http_exception_handler(request, exc)

    return app
