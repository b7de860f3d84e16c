"""Server-rendered pages (Jinja2); `static/app.js` adds filtering, sorting and live updates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from bl_reservoir.errors import ReservoirError, UsageError
from bl_reservoir.web import cadences as cadence_views
from bl_reservoir.web import jobs as campaign_views
from bl_reservoir.web import observations as views
from bl_reservoir.web.bucket import NotInBucket, check_names, safe_name
from bl_reservoir.web.hits import HitFilter, strongest_per_band
from bl_reservoir.web.params import hit_filter, text
from bl_reservoir.web.security import COOKIE, require_read, shown_to, token_matches

PAGE_SIZE = 50
#: Thumbnails of the strongest hits shown for each band of the observation page.
BAND_THUMBNAILS = 6
FIRST_ROWS = 100
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _num(value: Any) -> Any:
    """Floats with 10 significant digits (1 Hz at 1.5 GHz in MHz), everything else as it is."""
    return f"{value:.10g}" if isinstance(value, float) else ("" if value is None else value)


templates.env.filters["num"] = _num
templates.env.filters["path"] = lambda value: quote(str(value), safe="")
#: `name is served`: a name the pages and the API answer (the one naming rule); others are listed without a link.
templates.env.tests["served"] = lambda value: isinstance(value, str) and safe_name(value)


def same_site(target: str | None) -> str:
    """`target` when it is a path of this site (`/...`, no scheme, host, backslash or control character),
    else `/`: where a login may send the browser back to."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 32 or ord(c) == 127 for c in target):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def login_link(here: str) -> str:
    """The login form, sending the browser back to `here` (a path of this site) afterwards."""
    return "/login" if here == "/" else "/login?" + urlencode({"next": here})


def _login_redirect(request: Request) -> None:
    """Pages: like `require_read`, but a browser without the token is sent to the login form, which sends it
    back here afterwards."""
    try:
        require_read(request)
    except HTTPException:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "log in first", headers={"Location": login_link(here)}) from None


router = APIRouter(include_in_schema=False)
pages = APIRouter(dependencies=[Depends(_login_redirect)], include_in_schema=False, default_response_class=HTMLResponse)


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page: `writes` (the server takes writes) and `logged_in` (the browser holds the login cookie) are
    known to every template."""
    state = request.app.state.web
    logged_in = token_matches(request.cookies.get(COOKIE), state.token)
    return templates.TemplateResponse(request, name, {"writes": bool(state.token), "logged_in": logged_in,
                                                      **context}, status_code=status_code)


@pages.get("/")
def observations_page(request: Request, q: Annotated[str | None, Query(max_length=200)] = None,
                      sort: Literal["obs_name", "source", "mjd", "n_hits", "updated", "band"] = "obs_name",
                      desc: bool = False, page: Annotated[int, Query(ge=1, le=10**7)] = 1) -> HTMLResponse:
    state = request.app.state.web
    listing = views.list_observations(state, q, sort, desc, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    pages_total = max(1, -(-listing["total"] // PAGE_SIZE))

    def link(**change: Any) -> str:
        params = {"q": q or "", "sort": sort, "desc": int(desc), "page": page, **change}
        return "/?" + urlencode({k: v for k, v in params.items() if v not in ("", None)})

    return render(request, "observations.html", listing=listing, q=q or "", sort=sort, desc=desc, page=page,
                   pages_total=pages_total, link=link)


@pages.get("/observations/{obs}")
def observation_page(request: Request, obs: str) -> HTMLResponse:
    state = request.app.state.web
    found = views.observation(state, obs)
    for res in found["results"]:
        bucket, ref, _, version = views.result(state, obs, res["package"], res["name"])
        frame = bucket.hits(ref, version)
        res["bands"] = strongest_per_band(frame, BAND_THUMBNAILS)
        strength = res["strength"]
        page = views.hits_page(state, obs, res["package"], res["name"], HitFilter(), strength, strength is not None,
                               FIRST_ROWS, 0)
        res["rows"], res["table_columns"], res["page_size"] = page["items"], page["columns"], FIRST_ROWS
    return render(request, "observation.html", obs=found, cadences=cadence_views.cadences_of(state, obs))


@pages.get("/observations/{obs}/{package}/{name}/hits/{i}")
def hit_page(request: Request, obs: str, package: str, name: str, i: int) -> HTMLResponse:
    state = request.app.state.web
    found = views.hit(state, obs, package, name, i)
    return render(request, "hit.html", hit=found, cadences=cadence_views.cadences_of(state, obs))


@pages.get("/cadences")
def cadences_page(request: Request, page: Annotated[int, Query(ge=1, le=10**7)] = 1) -> HTMLResponse:
    listing = cadence_views.list_cadences(request.app.state.web, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    pages_total = max(1, -(-listing["total"] // PAGE_SIZE))
    return render(request, "cadences.html", listing=listing, page=page, pages_total=pages_total,
                   link=lambda page: f"/cadences?page={page}")


@pages.get("/cadences/{cadence_id}")
def cadence_page(request: Request, cadence_id: str) -> HTMLResponse:
    return render(request, "cadence.html", cadence=cadence_views.cadence(request.app.state.web, cadence_id))


@pages.get("/search")
def search_page(request: Request, where: Annotated[HitFilter, Depends(hit_filter)],
                algorithm: text(200) = None,
                observation: text(500) = None,
                page: Annotated[int, Query(ge=1, le=10**7)] = 1) -> HTMLResponse:
    filters = {**dict.fromkeys(("fmin", "fmax", "min_snr", "min_statistic", "drift_min", "drift_max")),
               **where.query(), "algorithm": algorithm, "observation": observation}
    asked = any(v is not None for v in filters.values())
    rows = views.search_hits(request.app.state.web, **filters, limit=PAGE_SIZE + 1,
                             offset=(page - 1) * PAGE_SIZE) if asked else []
    more = len(rows) > PAGE_SIZE
    query = {k: v for k, v in filters.items() if v is not None}
    return render(request, "search.html", rows=rows[:PAGE_SIZE], filters=filters, asked=asked, page=page,
                   next_link="/search?" + urlencode({**query, "page": page + 1}) if more else None,
                   prev_link="/search?" + urlencode({**query, "page": page - 1}) if page > 1 else None)


@pages.get("/campaigns")
def campaigns_page(request: Request) -> HTMLResponse:
    found = campaign_views.campaigns_snapshot(request.app.state.web.jobs)
    return render(request, "campaigns.html", campaigns=found)


@pages.get("/campaigns/{campaign_id}")
def campaign_page(request: Request, campaign_id: str) -> HTMLResponse:
    try:
        found = campaign_views.campaign_snapshot(request.app.state.web.jobs, campaign_id)
    except UsageError:
        raise NotInBucket(campaign_id) from None
    return render(request, "campaign.html", campaign=shown_to(request, found),
                   login_link=login_link(f"/campaigns/{campaign_id}"))


@pages.get("/submit")
def submit_page(request: Request) -> HTMLResponse:
    from bl_reservoir.algorithms import list_algorithms

    state = request.app.state.web
    try:
        algorithms = [a.name for a in list_algorithms()]
        problem = None
    except ReservoirError as exc:
        algorithms, problem = [], str(exc)
    return render(request, "submit.html", algorithms=algorithms, problem=problem, bucket=state.bucket_uri,
                   scheduler=state.scheduler)


@pages.get("/workers")
def workers_page(request: Request) -> HTMLResponse:
    state = request.app.state.web
    return render(request, "workers.html", view=state.workers.describe(state.jobs))


@pages.get("/sensitivity")
def sensitivity_page(request: Request) -> HTMLResponse:
    return render(request, "sensitivity.html", reports=request.app.state.web.bucket.reports(), report=None)


@pages.get("/sensitivity/{report}")
def sensitivity_report(request: Request, report: str) -> HTMLResponse:
    check_names(report)
    files = request.app.state.web.bucket.report_files(report)
    summary = json.dumps(files["summary"], indent=2) if files["summary"] is not None else None
    return render(request, "sensitivity.html", reports=None, report=files, summary=summary)


@pages.get("/sensitivity/{report}/{file}", response_class=Response)
def sensitivity_picture(request: Request, report: str, file: str) -> Response:
    body = request.app.state.web.bucket.report_picture(report, file)
    return Response(body, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


# ------------------------------------------------------------------------ login (for --auth-read)

@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> HTMLResponse:
    return render(request, "login.html", failed=False, next=same_site(next))


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: Annotated[str, Form(max_length=500)],
          next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    """Set the login cookie and go back to the page that asked for it (a path of this site only)."""
    state = request.app.state.web
    if not token_matches(token, state.token):
        return render(request, "login.html", status_code=401, failed=True, next=same_site(next))
    response = RedirectResponse(same_site(next), status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/logout", response_class=HTMLResponse)
def logout(request: Request) -> Response:
    """Forget the login cookie; back to the observations (or the login form, where reading needs the token)."""
    response = RedirectResponse("/login" if request.app.state.web.auth_read else "/", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


router.include_router(pages)
