"""Server-sent event streams: the messages, the heartbeat that keeps proxies from closing a quiet stream,
and a stream of what a poll returns until it is done."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from bl_reservoir.results import to_jsonable

SSE_POLL_S = 0.5          # how often event streams look at the store
SSE_HEARTBEAT_S = 15.0    # a comment line keeps proxies from closing a quiet stream


def sse(data: Any, kind: str | None = None, event_id: int | None = None) -> bytes:
    """One message: its id and event kind when given, and `data` as one line of JSON."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if kind:
        lines.append(f"event: {kind}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


class Heartbeat:
    """Knows when a quiet stream is due a comment line."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def sent(self, message: bytes) -> bytes:
        self.last = time.monotonic()
        return message

    def due(self) -> bool:
        return time.monotonic() - self.last >= SSE_HEARTBEAT_S


class Changed:
    """A poll of `snapshot()` that answers None while it equals the last one returned."""

    def __init__(self, snapshot: Callable[[], Any]):
        self.snapshot = snapshot
        self.last: Any = None

    def __call__(self) -> Any:
        found = to_jsonable(self.snapshot())
        if found == self.last:
            return None
        self.last = found
        return found


def stream(request: Request, poll: Callable[[], Any], done: Callable[[Any], bool],
            ending: Callable[[Any], Any] = lambda message: message) -> StreamingResponse:
    """An SSE stream sending each message `poll()` returns (None: nothing new) until the last one sent is
    `done`, then `ending(it)` as the `end` event; or until the client goes."""

    async def events() -> AsyncIterator[bytes]:
        last = None
        heartbeat = Heartbeat()
        while not await request.is_disconnected():
            message = to_jsonable(await run_in_threadpool(poll))
            if message is not None:
                last = message
                yield heartbeat.sent(sse(message))
            if last is not None and done(last):
                yield sse(ending(last), kind="end")
                return
            await asyncio.sleep(SSE_POLL_S)
            if heartbeat.due():
                yield heartbeat.sent(b": ping\n\n")

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
