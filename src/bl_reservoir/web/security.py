"""Who may do what, and headers every answer carries.

Write endpoints need `Authorization: Bearer <BL_RESERVOIR_TOKEN>`, compared in constant time;
with no token configured they are off (403 says why). Browsing is open unless the app is
created with `auth_read=True`; then reads need the same token, as a bearer header or as the
`bl_token` cookie set by the login form. The cookie authorises no submission; it authorises the
campaign buttons (cancel, retry, resume) only for a request of our own pages: the cookie is
`SameSite=Strict`, the request must carry `X-Requested-With: bl-reservoir` (a form cannot set a
header, and a script of another site can only after a CORS preflight this server never grants)
and must not be marked cross-site by the browser (`Sec-Fetch-Site`). A raw-path guard answers 404 to encoded slashes,
backslashes, NUL and dot segments before routing, so no handler ever sees them. A body limit
answers 413 to a request body over `MAX_BODY_BYTES` before it is read and before any route
(authentication included) runs. Job errors, logs and commands name the server's local paths;
a request without the token (on a server that has one) sees each as `…/name`.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any
from urllib.parse import unquote

from fastapi import HTTPException, Request
from starlette.exceptions import HTTPException as StarletteHTTPException

COOKIE = "bl_token"
#: Largest request body accepted (bytes): a campaign of some thousands of inputs fits.
MAX_BODY_BYTES = 2**20
#: Fields of jobs, events and logs whose text may name local paths (the cache, scratch folders, commands).
PRIVATE_FIELDS = frozenset({"error", "reason", "log", "path", "command", "message", "detail"})
# An absolute local path of two or more segments (or a file:// URI), not part of a URL or a relative path.
_LOCAL_PATH = re.compile(r"(?<![\w.~:/-])(?:file://)?(?:/[^\s/'\"`<>]+){2,}/?")
_BAD_RAW = re.compile(rb"%2f|%5c|%00|\\|\x00", re.IGNORECASE)
_DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")

_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
# Swagger UI and ReDoc (their bundles served from /docs-assets, never a CDN) start with an inline script.
_DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
             "script-src 'self' 'unsafe-inline'; worker-src blob:; "
             "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


def token_matches(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; never true when no token is configured."""
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header, if any."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def require_write(request: Request) -> None:
    """FastAPI dependency of write endpoints: 403 when writes are off, 401 for a missing or wrong token."""
    expected = request.app.state.web.token
    if not expected:
        raise HTTPException(403, "submitting is off: the server has no BL_RESERVOIR_TOKEN configured")
    if not token_matches(bearer(request), expected):
        raise HTTPException(401, "a valid 'Authorization: Bearer <token>' header is required",
                            headers={"WWW-Authenticate": "Bearer"})


#: The header our pages' scripts send with a write that the login cookie authorises.
PAGE_HEADER = ("x-requested-with", "bl-reservoir")


def from_our_page(request: Request) -> bool:
    """A request a page of this site sent from a logged-in browser: the login cookie, our header, and no
    browser mark of another site."""
    if not token_matches(request.cookies.get(COOKIE), request.app.state.web.token):
        return False
    if request.headers.get(PAGE_HEADER[0]) != PAGE_HEADER[1]:
        return False
    return request.headers.get("sec-fetch-site", "same-origin") == "same-origin"


def require_control(request: Request) -> None:
    """FastAPI dependency of the campaign buttons: the bearer token, or the login cookie from our own page
    (`from_our_page`); 403 when writes are off, 401 otherwise."""
    expected = request.app.state.web.token
    if not expected:
        raise HTTPException(403, "writes are off: the server has no BL_RESERVOIR_TOKEN configured")
    if token_matches(bearer(request), expected) or from_our_page(request):
        return
    raise HTTPException(401, "a valid 'Authorization: Bearer <token>' header, or logging in at /login, is required",
                        headers={"WWW-Authenticate": "Bearer"})


def require_read(request: Request) -> None:
    """FastAPI dependency of read endpoints: open, unless the app was started with `auth_read`."""
    web = request.app.state.web
    if not web.auth_read:
        return
    if token_matches(bearer(request), web.token) or token_matches(request.cookies.get(COOKIE), web.token):
        return
    raise HTTPException(401, "this server requires the token to read (log in at /login)",
                        headers={"WWW-Authenticate": "Bearer"})


def sees_internals(request: Request) -> bool:
    """Whether `request` may see local paths in job errors: with the token (bearer or login cookie), or
    on a server without one (where nobody could show more)."""
    expected = request.app.state.web.token
    if not expected:
        return True
    return token_matches(bearer(request), expected) or token_matches(request.cookies.get(COOKIE), expected)


def redact_paths(text: str) -> str:
    """`text` with each absolute local path replaced by `…/<its last name>`; URLs and relative paths kept."""
    def short(found: re.Match) -> str:
        path = found.group(0)
        name = path.rstrip("/").rsplit("/", 1)[-1]
        return f"…/{name}/" if path.endswith("/") else f"…/{name}"

    return _LOCAL_PATH.sub(short, text)


def _redacted(data: Any, private: bool = False) -> Any:
    if isinstance(data, dict):
        return {k: _redacted(v, private or k in PRIVATE_FIELDS) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_redacted(v, private) for v in data]
    return redact_paths(data) if private and isinstance(data, str) else data


def shown_to(request: Request, data: Any) -> Any:
    """`data` (jobs, campaigns, events: JSON-like) as `request` may see it: errors, reasons, logs and
    commands with local paths shortened (`redact_paths`) unless it `sees_internals`."""
    return data if sees_internals(request) else _redacted(data)


def unsafe_path(raw_path: bytes) -> bool:
    """True for request paths with encoded slashes, backslashes, NUL, `..` anywhere, or `.` segments
    (no bucket name holds `..`, so refusing it everywhere costs nothing and closes every variant)."""
    if _BAD_RAW.search(raw_path):
        return True
    decoded = unquote(raw_path.decode("latin-1"))
    return ".." in decoded or bool(_DOT_SEGMENT.search(decoded))


class GuardMiddleware:
    """Pure ASGI middleware: 404 for unsafe raw paths, security headers on every response."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
        raw = raw.split(b"?", 1)[0]
        path = scope.get("path", "")
        csp = (_DOCS_CSP if path in ("/docs", "/redoc") or path.startswith("/docs/") else _CSP).encode()

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"content-security-policy"]
                message["headers"] = [*headers, *HEADERS, (b"content-security-policy", csp)]
            await send(message)

        if unsafe_path(raw) or "\x00" in path or "\\" in path:
            await _send_json(send_with_headers, 404, "Not Found", close=False)
            return
        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(StarletteHTTPException):
    """A request body over the limit, found while it is read: the app's handlers answer it with 413."""

    def __init__(self, max_bytes: int):
        super().__init__(413, f"request body over the limit of {max_bytes} bytes")


class BodyLimitMiddleware:
    """Pure ASGI middleware: 413 for a request body over `max_bytes`.

    A `Content-Length` over the limit is answered at once, so nothing reads the body and no route or
    dependency (authentication included) runs; a body sent without one (chunked) is counted as the
    app reads it and cut off where it passes the limit.
    """

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lengths = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
        if lengths and (len(lengths) > 1 or not lengths[0].isdigit()):
            await _send_json(send, 400, "invalid Content-Length header")
            return
        if lengths and int(lengths[0]) > self.max_bytes:
            await _send_json(send, 413, BodyTooLarge(self.max_bytes).detail)
            return
        received = 0
        started = False

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge as exc:  # read outside the app's exception handlers
            if started:
                raise
            await _send_json(send, 413, exc.detail)


async def _send_json(send: Any, status: int, detail: str, close: bool = True) -> None:
    """`{"detail": ...}` as the whole response, from middleware (before any route); `close` ends the
    connection, for a request whose body was never read."""
    body = json.dumps({"detail": detail}, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"connection", b"close")] if close else headers})
    await send({"type": "http.response.body", "body": body})
