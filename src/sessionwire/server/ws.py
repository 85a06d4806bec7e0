"""``GET /v1/ws``: one WebSocket carrying several sessions.

Client messages are ``{"op": ..., "id": ..., ...}``; every op gets one reply,
``{"reply": id, "ok": true, ...}`` or ``{"reply": id, "error": {"code", "message", "status"}}``.
Ops: ``subscribe {session, token, after}``, ``unsubscribe {session}``,
``send_turn {session, text}``, ``cancel_turn {session, turn}``, ``start_job {session, title, prompt}``,
``cancel_job {session, job}``, ``resolve_approval {session, approval, decision, by?}``,
``publish {session, events}``, ``state {session}``. A ``token`` given once for a session
(with ``subscribe`` or any op) is remembered for that session on this socket.
Records arrive as their wire JSON, one text frame each; control frames carry ``session``.
A subscription the server ends (the session closed here, or reading it failed) ends with
``{"control": "ended", "session", "reason"?, "error"?}``: subscribe again from the last seq seen,
unless ``reason`` is ``session_deleted`` (the session is gone, on every process).

``subscribe {..., "batch": true}`` opts into batched frames for that session: every frame of
the subscription is then a JSON array of the same items, in order (``[record, record, control,
...]``): all that was ready at once, up to :data:`BATCH_FRAME_BYTES` per frame (a larger item
goes alone), built by joining the records' encoded bytes. The reply says ``"batch": true``; a
server without the option omits it and sends single frames. Replies are never arrays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from ..channel import Control, Item
from .bodies import ResolveApproval, SendTurn, StartJob, events_of
from .commands import cancel_job, cancel_turn, resolve_approval, send_turn, start_job
from .context import Context, context
from .errors import HTTPError, to_http_error
from .origin import origin_allowed
from .sessions import publish_external
from .sse import checked_cursor

logger = logging.getLogger("sessionwire.server")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(dict[str, Any])

BATCH_FRAME_BYTES = 256 * 1024
"""A batched frame's size bound, so clients' message size limits hold (an item larger goes alone)."""


def array_frames(items: Sequence[Item], limit: int = BATCH_FRAME_BYTES) -> list[str]:
    """Items as JSON arrays of their wire JSON, in order, each at most ``limit`` bytes or one item.

    Records are joined from their encoded ``raw`` bytes, never encoded again.
    """
    frames: list[str] = []
    parts: list[bytes] = []
    size = 0
    for item in items:
        raw = item.raw
        if parts and size + len(raw) + 2 > limit:  # the frame's bytes once raw is in
            frames.append(_array(parts))
            parts, size = [], 0
        parts.append(raw)
        size += len(raw) + 1
    if parts:
        frames.append(_array(parts))
    return frames


def _array(parts: list[bytes]) -> str:
    return (b"[%b]" % b",".join(parts)).decode()


def single_frames(items: Sequence[Item]) -> list[str]:
    """Items as one text frame each (their wire JSON)."""
    return [item.to_json() if isinstance(item, Control) else item.raw.decode() for item in items]


class Connection:
    """One client's WebSocket: its subscriptions, remembered tokens and op handlers.

    ``send`` is the ASGI ``send`` under ``ws``: the pumps send their frames with it directly
    (``ws.send_text`` adds two awaited layers and state checks to every frame, ~0.7 µs).
    """

    def __init__(self, ctx: Context, ws: WebSocket, send: Send) -> None:
        self.ctx, self.ws, self.send = ctx, ws, send
        self.tokens: dict[str, str] = {}
        self.pumps: dict[str, asyncio.Task[None]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.send_lock = asyncio.Lock()
        self.ops: dict[str, Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "send_turn": lambda s, m: send_turn(self.ctx, s, msgspec.convert(m, SendTurn)),
            "start_job": lambda s, m: start_job(self.ctx, s, msgspec.convert(m, StartJob)),
            "cancel_turn": lambda s, m: cancel_turn(self.ctx, s, _field(m, "turn")),
            "cancel_job": lambda s, m: cancel_job(self.ctx, s, _field(m, "job")),
            "resolve_approval": lambda s, m: resolve_approval(
                self.ctx, s, _field(m, "approval"), msgspec.convert(m, ResolveApproval)
            ),
            "publish": self.publish,
            "state": self.state,
        }

    async def run(self) -> None:
        """Serve the socket until the client leaves or the server stops."""
        if not origin_allowed(self.ctx.settings, self.ws.headers.get("origin"), scope=self.ws.scope):
            await self.ws.close(code=1008, reason="origin not allowed")
            return
        await self.ws.accept()
        self.ctx.streams["ws"] += 1
        reader = asyncio.ensure_future(self._read())
        stop = asyncio.ensure_future(self.ctx.stopping.wait())
        try:
            await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.ctx.streams["ws"] -= 1
            for task in [reader, stop, *self.pumps.values(), *self.tasks]:
                task.cancel()
            await asyncio.gather(reader, stop, *self.pumps.values(), *self.tasks, return_exceptions=True)
        if stop.done() and not stop.cancelled():
            with contextlib.suppress(Exception):
                await self.ws.close(code=1001, reason="server shutting down")

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text")
            if data is None:
                data = (message.get("bytes") or b"").decode("utf-8", "replace")
            await self._handle(data)

    async def _handle(self, data: str) -> None:
        limit = self.ctx.settings.max_body
        if len(data) > limit or (len(data) * 4 > limit and len(data.encode()) > limit):
            # The limit of an HTTP body holds for a message too (a publish, say): nothing of it is read.
            error = HTTPError(413, "body_too_large", f"the message has more than {limit} bytes, the limit")
            await self.reply(None, error=error)
            return
        try:
            msg = _decoder.decode(data)
        except (msgspec.DecodeError, RecursionError) as exc:  # RecursionError: nested too deeply
            await self.reply(None, error=HTTPError(400, "malformed_json", f"not a JSON object: {exc}"))
            return
        op, op_id = msg.get("op"), msg.get("id")
        if op == "subscribe":
            replied = asyncio.Event()  # the subscription's first frame follows its reply
            try:
                await self._guard(op_id, self.subscribe(msg, replied))
            finally:
                replied.set()
        elif op == "unsubscribe":
            await self._guard(op_id, self.unsubscribe(msg))
        elif op in self.ops:
            task = asyncio.ensure_future(self._guard(op_id, self._command(op, msg)))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            await self.reply(op_id, error=HTTPError(422, "unknown_op", f"unknown op {op!r}"))

    async def _guard(self, op_id: Any, work: Awaitable[dict[str, Any]]) -> None:
        try:
            result = await work
        except (msgspec.ValidationError, TypeError) as exc:
            await self.reply(op_id, error=HTTPError(422, "invalid", str(exc)))
        except Exception as exc:
            try:
                err = to_http_error(exc)
            except Exception:
                logger.exception("websocket op %r failed", op_id)
                err = HTTPError(500, "internal", f"internal error: {type(exc).__name__}")
            await self.reply(op_id, error=err)
        else:
            await self.reply(op_id, result=result)

    async def reply(self, op_id: Any, result: dict[str, Any] | None = None, error: HTTPError | None = None) -> None:
        """Send the reply to op ``op_id``."""
        if error is not None:
            body: dict[str, Any] = {
                "reply": op_id,
                "error": {"code": error.code, "message": error.message, "status": error.status},
            }
        else:
            body = {"reply": op_id, "ok": True, **(result or {})}
        async with self.send_lock:
            await self.ws.send_text(_encoder.encode(body).decode())

    async def _authorize(self, msg: dict[str, Any]) -> str:
        session = _field(msg, "session")
        token = msg.get("token")
        token = token if isinstance(token, str) and token else self.tokens.get(session)
        await self.ctx.authorize(session, token)
        if token:
            self.tokens[session] = token
        return session

    async def _command(self, op: str, msg: dict[str, Any]) -> dict[str, Any]:
        session = await self._authorize(msg)
        return await self.ops[op](session, msg)

    async def subscribe(self, msg: dict[str, Any], replied: asyncio.Event | None = None) -> dict[str, Any]:
        """Start streaming a session's records after ``after``, once ``replied`` is set (the reply went out)."""
        session_id = await self._authorize(msg)
        after = msg.get("after", 0)
        after = checked_cursor(0 if after is None else after, "after")
        batched = msg.get("batch", False)
        if batched is None:
            batched = False
        if not isinstance(batched, bool):
            raise HTTPError(422, "invalid", f"batch must be true or false, not {batched!r}")
        if session_id in self.pumps:
            raise HTTPError(409, "already_subscribed", f"this socket already subscribes to session {session_id!r}")
        hub = self.ctx.require_hub()
        session = await hub.session(session_id)
        credential = hub.credential(self.tokens.get(session_id), self.ctx.settings.admin_token)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        pump = asyncio.ensure_future(self._pump(session_id, session, after, ready, batched, credential, replied))
        self.pumps[session_id] = pump
        try:
            await asyncio.shield(ready)
        except BaseException:
            self.pumps.pop(session_id, None)
            raise
        if batched:
            return {"session": session_id, "after": after, "batch": True}
        return {"session": session_id, "after": after}

    async def _pump(
        self,
        session_id: str,
        session: Any,
        after: int,
        ready: asyncio.Future[None],
        batched: bool,
        credential: str | None = None,
        replied: asyncio.Event | None = None,
    ) -> None:
        error: HTTPError | None = None
        reason: str | None = None
        frames = array_frames if batched else single_frames
        try:
            async with session.subscribe(after, credential) as sub:
                await self.ctx.require_hub().recheck(session_id, sub)
                ready.set_result(None)
                if replied is not None:
                    await replied.wait()
                while True:
                    batch = await sub.batch()
                    if batch and isinstance(batch[-1], Control) and batch[-1].control == "ended":
                        reason = batch.pop().reason  # sent below, as every end of a subscription is
                    if not batch:
                        break
                    texts = frames(batch)
                    async with self.send_lock:
                        for text in texts:
                            await self.send({"type": "websocket.send", "text": text})
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
                return
            error = _as_http_error(exc)
        finally:
            if self.pumps.get(session_id) is asyncio.current_task():
                del self.pumps[session_id]
        # Ended by the server's side (the session's channel closed, or reading failed), not by
        # an unsubscribe: say so, so the client can subscribe again from its last seq.
        body: dict[str, Any] = {"control": "ended", "session": session_id}
        if reason is not None:
            body["reason"] = reason
        if error is not None:
            body["error"] = {"code": error.code, "message": error.message, "status": error.status}
        text = _encoder.encode([body] if batched else body).decode()
        with contextlib.suppress(Exception):
            async with self.send_lock:
                await self.ws.send_text(text)

    async def unsubscribe(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Stop streaming a session."""
        session = _field(msg, "session")
        pump = self.pumps.pop(session, None)
        if pump is None:
            raise HTTPError(404, "not_subscribed", f"this socket does not subscribe to session {session!r}")
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        return {"session": session}

    async def publish(self, session_id: str, msg: dict[str, Any]) -> dict[str, Any]:
        """Append a batch of events (wire form, no envelope); one bad event rejects the batch."""
        events = msg.get("events")
        if not isinstance(events, list) or not events:
            raise HTTPError(422, "invalid", "publish needs a non-empty list of events")
        records = await publish_external(self.ctx, session_id, events_of(events))
        return {"session": session_id, "seqs": [r.seq for r in records]}

    async def state(self, session_id: str, msg: dict[str, Any]) -> dict[str, Any]:
        """The session's folded state and its seq."""
        state = await (await self.ctx.require_hub().session(session_id)).state()
        return {"session": session_id, "seq": state.seq, "state": state.to_dict()}


def _as_http_error(exc: Exception) -> HTTPError:
    try:
        return to_http_error(exc)
    except Exception:
        return HTTPError(500, "internal", f"internal error: {type(exc).__name__}")


def _field(msg: dict[str, Any], name: str) -> str:
    value = msg.get(name)
    if not isinstance(value, str) or not value:
        raise HTTPError(422, "invalid", f"{name!r} is required (a non-empty string)")
    return value


class Endpoint:
    """The ``/v1/ws`` endpoint, an ASGI app (so a :class:`Connection` has the ``send`` under its socket)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive=receive, send=send)
        await Connection(context(ws), ws, send).run()


routes = [WebSocketRoute("/v1/ws", Endpoint())]
