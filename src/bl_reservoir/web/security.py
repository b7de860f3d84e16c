"""Who may do what, and headers every answer carries.

Write endpoints need `Authorization: Bearer <BL_RESERVOIR_TOKEN>`, compared in constant time;
with no token configured they are off (403 says why). Browsing is open unless the app is
created with `auth_read=True`; then reads need the same token, as a bearer header or as the
`bl_token` cookie set by the login form (the cookie never authorises a write, so a forged
cross-site form cannot submit anything). A raw-path guard answers 404 to encoded slashes,
backslashes, NUL and dot segments before routing, so no handler ever sees them.
"""

from __future__ import annotations

import hmac
import re
from typing import Any
from urllib.parse import unquote

from fastapi import HTTPException, Request

COOKIE = "bl_token"
_BAD_RAW = re.compile(rb"%2f|%5c|%00|\\|\x00", re.IGNORECASE)
_DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")

_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
# Swagger UI and ReDoc load their bundles from a CDN and start with an inline script.
_DOCS_CSP = ("default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com https://cdn.jsdelivr.net; "
             "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
             "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; worker-src blob:; "
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


def require_read(request: Request) -> None:
    """FastAPI dependency of read endpoints: open, unless the app was started with `auth_read`."""
    web = request.app.state.web
    if not web.auth_read:
        return
    if token_matches(bearer(request), web.token) or token_matches(request.cookies.get(COOKIE), web.token):
        return
    raise HTTPException(401, "this server requires the token to read (log in at /login)",
                        headers={"WWW-Authenticate": "Bearer"})


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
            body = b'{"detail":"Not Found"}'
            await send_with_headers({"type": "http.response.start", "status": 404,
                                     "headers": [(b"content-type", b"application/json"),
                                                 (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send_with_headers)
