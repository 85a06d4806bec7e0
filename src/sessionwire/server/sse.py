"""``GET /v1/sessions/{id}/events``: a session's records as Server-Sent Events.

A record is ``id: <seq>`` / ``event: <type>`` / ``data: <record json>``; a control frame is
``event: <control>`` / ``data: <json>`` with no id; a heartbeat is a comment line. All the
items of one subscription batch go out in one write. The stream ends when the client goes,
the session closes or the server shuts down; when the session was deleted (on any process), its
last frame is ``event: ended`` with ``{"control": "ended", "session", "reason": "session_deleted"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..channel import Control, Session, Subscription
from .context import Context, context, request_token
from .errors import HTTPError
from .frames import HEARTBEAT, RETRY, encode_frames
from .push import body

MAX_CURSOR = 2**63 - 1
"""The largest cursor (a seq is a signed 64-bit integer in every store)."""


def parse_cursor(value: str | None, name: str) -> int | None:
    """A cursor from a header or query parameter: a seq in 0..2^63-1; 400 ``invalid_cursor`` otherwise."""
    if value is None or value == "":
        return None
    digits = value.strip()
    # int() alone would also take "1_0", "+1" and non-ASCII digits, and fail on 4,300 digits: a
    # cursor is at most 19 plain ASCII digits.
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 19):
        raise invalid_cursor(name, value)
    return checked_cursor(int(digits), name)


def checked_cursor(value: object, name: str) -> int:
    """``value`` if it is a cursor (an integer in 0..2^63-1), else 400 ``invalid_cursor``."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_CURSOR:
        raise invalid_cursor(name, value)
    return value


def invalid_cursor(name: str, value: object) -> HTTPError:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return HTTPError(400, "invalid_cursor", f"{name} must be a seq (an integer in 0..2^63-1), not {shown}")


class SubscriptionStream(Response):
    """A streaming SSE response over one subscription; subclasses say what it sends.

    It subscribes (tagged with its token's ``credential``: a rotation ends it), sends the
    headers (only those for HEAD), :meth:`opening`, then whatever :meth:`pump` sends until the
    client goes, the pump returns or the server stops, then :meth:`tail`.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        ctx: Context,
        session: Session,
        after: int,
        credential: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        # No super().__init__: it would set a Content-Length; a stream has none.
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),
            *((k.lower().encode(), v.encode()) for k, v in headers),
        ]
        self.ctx, self.session, self.after, self.credential = ctx, session, after, credential

    def opening(self) -> bytes:
        """What goes out before the first record."""
        return RETRY

    async def pump(self, sub: Subscription, send: Send) -> None:
        """Send the subscription's items until it is done (or forever)."""
        raise NotImplementedError

    def tail(self) -> bytes:
        """What goes out last, unless the client went."""
        return b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self.ctx
        # Raises CursorAhead (409) before any byte is sent.
        async with self.session.subscribe(self.after, self.credential) as sub:
            await ctx.require_hub().recheck(self.session.id, sub)
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if scope.get("method") == "HEAD":
                # Headers only: a stream nobody can read would pump until the connection closes.
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send({"type": "http.response.body", "body": self.opening(), "more_body": True})
            # The response has started: its writes may skip the app's middleware (see App).
            send = scope.get("sessionwire.send", send)
            ctx.streams["sse"] += 1
            try:
                gone = await run_until_done(self.pump(sub, send), disconnected(receive), ctx.stopping.wait())
            finally:
                ctx.streams["sse"] -= 1
            if not gone:
                with contextlib.suppress(OSError):
                    await send({"type": "http.response.body", "body": self.tail(), "more_body": False})


class EventStream(SubscriptionStream):
    """The streaming response of one SSE subscription: every record and control frame."""

    async def pump(self, sub: Subscription, send: Send) -> None:
        # Pulled while it catches up (or whenever the live path cannot serve it); written by its
        # session's push group while it is caught up (see .push).
        heartbeat = self.ctx.settings.heartbeat
        while True:
            batch = await sub.next_batch(heartbeat)
            if batch:
                await send(body(encode_frames(batch)))
            elif sub.closed:
                last = await sub.batch()  # closed as the wait timed out: its ``ended`` frame, if any
                if last:
                    await send(body(encode_frames(last)))
                return
            else:
                await send(body(HEARTBEAT))
            await self.ctx.pushers.follow(sub, send)


async def disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def run_until_done(
    pump: Coroutine[Any, Any, None], watch: Coroutine[Any, Any, None], stop: Coroutine[Any, Any, Any]
) -> bool:
    """Run the three until one ends; True if the client disconnected."""
    tasks: list[asyncio.Future[Any]] = [asyncio.ensure_future(c) for c in (pump, watch, stop)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    pump_task = tasks[0]
    if pump_task in done and not pump_task.cancelled() and pump_task.exception() is not None:
        return True  # writing failed: the client is gone
    return tasks[1] in done


async def events(request: Request) -> Response:
    """Open an SSE subscription from ``Last-Event-ID`` (preferred, as EventSource resends it) or ``?after=``."""
    ctx = context(request)
    session_id = request.path_params["session"]
    token = request_token(request, query=True)
    await ctx.authorize(session_id, token)
    after = parse_cursor(request.headers.get("last-event-id"), "Last-Event-ID")
    if after is None:
        after = parse_cursor(request.query_params.get("after"), "after") or 0
    hub = ctx.require_hub()
    session = await hub.session(session_id)
    return EventStream(ctx, session, after, hub.credential(token, ctx.settings.admin_token))


routes = [Route("/v1/sessions/{session}/events", events, methods=["GET"])]


__all__ = ["Control", "EventStream", "checked_cursor", "encode_frames", "events", "parse_cursor", "routes"]
