"""Session routes: create, list, read state, rename, rotate token, delete, and publish records."""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..backends.lifecycle import violation
from ..events import AnyEvent, Record, SessionRenamed
from ..titles import rename, sync_title
from .bodies import CreateSession, Rename, decode_any, events_of, read, read_body
from .context import Context, context, request_token
from .errors import HTTPError
from .responses import json_response, raw_json_response

_encoder = msgspec.json.Encoder()


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key header, if any."""
    return request.headers.get("idempotency-key")


def require_admin(ctx: Context, request: Request) -> None:
    """Raise 401/403 unless the request carries the server's admin token."""
    token = request_token(request)
    if not token:
        raise HTTPError(401, "unauthorized", "the admin token is required (Authorization: Bearer <token>)")
    admin = ctx.settings.admin_token
    if not admin or not hmac.compare_digest(token.encode(), admin.encode()):
        raise HTTPError(403, "forbidden", "this needs the server's admin token")


async def create_session(request: Request) -> Response:
    """``POST /v1/sessions`` → 201 ``{"session", "token"}``."""
    ctx = context(request)
    body, raw = await read(request, CreateSession, ctx.settings.max_body, empty_ok=True)

    async def handler() -> Response:
        session, token = await ctx.require_hub().create_session(body.id, body.title)
        return json_response({"session": session.id, "token": token}, status=201)

    # No credential yet: the key is the secret that gets the token back (see .idempotency).
    return await ctx.idempotency.run("POST /v1/sessions", idempotency_key(request), None, raw, handler, secret=True)


async def list_sessions(request: Request) -> Response:
    """``GET /v1/sessions`` (admin) → ``{"sessions": [{"id", "title", "created_at", "last_seq", "last_active"}]}``."""
    ctx = context(request)
    require_admin(ctx, request)
    log = ctx.require_hub().log
    out: list[dict[str, Any]] = []
    for meta in await log.sessions():
        _, last = await log.bounds(meta.id)
        last_active = meta.created_at
        if last > 0:
            tail = await log.read(meta.id, last - 1, limit=1)
            if tail:
                last_active = tail[-1].ts
        out.append(
            {
                "id": meta.id,
                "title": meta.title,
                "created_at": meta.created_at,
                "last_seq": last,
                "last_active": last_active,
            }
        )
    out.sort(key=lambda s: s["last_active"], reverse=True)
    return json_response({"sessions": out})


async def get_session(request: Request) -> Response:
    """``GET /v1/sessions/{id}`` → ``{"session", "seq", "state"}`` (state and seq consistent)."""
    ctx = context(request)
    session_id = request.path_params["session"]
    await ctx.authorize(session_id, request_token(request))
    state = await (await ctx.require_hub().session(session_id)).state()
    body = b'{"session":%b,"seq":%d,"state":%b}' % (_encoder.encode(session_id), state.seq, state.to_json())
    return raw_json_response(body)


async def delete_session(request: Request) -> Response:
    """``DELETE /v1/sessions/{id}`` (admin) → 204; the runtime's work in it is cancelled first."""
    ctx = context(request)
    require_admin(ctx, request)
    hub, session_id = ctx.require_hub(), request.path_params["session"]
    await hub.meta(session_id)  # 404 before anything is stopped
    if ctx.runtime is not None:
        # Its turns and jobs (this process's) end first: a late write would bring the session back.
        await ctx.runtime.close_session(session_id)
    await hub.delete_session(session_id)
    return Response(status_code=204)


async def rotate_token(request: Request) -> Response:
    """``POST /v1/sessions/{id}/token`` → ``{"session", "token"}``; the old token stops working."""
    ctx = context(request)
    session_id = request.path_params["session"]
    presented = request_token(request)
    raw = await read_body(request, ctx.settings.max_body)
    # The retry of a rotation whose answer was lost carries the token that rotation revoked: the
    # key is scoped by that token, so only its holder (who also has the key) gets the answer back.
    scope, key = f"POST {request.url.path}", idempotency_key(request)
    replayed = await ctx.idempotency.replay_done(scope, key, presented, raw, secret=True)
    if replayed is not None:
        return replayed
    await ctx.authorize(session_id, presented)

    async def handler() -> Response:
        token = await ctx.require_hub().rotate_token(session_id)
        return json_response({"session": session_id, "token": token})

    return await ctx.idempotency.run(scope, key, presented, raw, handler, secret=True)


async def rename_session(request: Request) -> Response:
    """``POST /v1/sessions/{id}/title`` ``{"title"}`` → ``{"session", "title", "seq"}``: records ``session.renamed``."""
    ctx = context(request)
    session_id = request.path_params["session"]
    await ctx.authorize(session_id, request_token(request))
    body, raw = await read(request, Rename, ctx.settings.max_body)
    title = body.title.strip()
    if not title:
        raise HTTPError(422, "invalid", "the title is blank")

    async def handler() -> Response:
        record = await rename(ctx.require_hub(), session_id, title)
        return json_response({"session": session_id, "title": title, "seq": record.seq})

    scope, credential = f"POST {request.url.path}", request_token(request)
    return await ctx.idempotency.run(scope, idempotency_key(request), credential, raw, handler)


async def publish_external(ctx: Context, session_id: str, events: list[AnyEvent]) -> list[Record]:
    """Append an external producer's events (``POST /records``, the WebSocket's ``publish``).

    They may not name what the runtime opened (the log refuses that), nor a turn the runtime
    admitted that has not opened yet: its id is known from the moment it is queued.
    """
    hub = ctx.require_hub()
    named = {turn for e in events if isinstance(turn := getattr(e, "turn", None), str)}
    if named:
        for turn, _ in await hub.store.membership.line(session_id):
            if turn in named:
                raise violation("owned_by_runtime", f"turn:{turn}")
    records = await (await hub.session(session_id)).publish_many(events, external=True)
    if any(isinstance(e, SessionRenamed) for e in events):
        await sync_title(hub, session_id, records[-1].seq)  # the admin list shows the new title
    return records


async def publish_records(request: Request) -> Response:
    """``POST /v1/sessions/{id}/records`` → ``{"seqs": [...]}``; one bad event rejects the batch (422)."""
    ctx = context(request)
    session_id = request.path_params["session"]
    await ctx.authorize(session_id, request_token(request))
    raw = await read_body(request, ctx.settings.max_body)
    data = decode_any(raw)
    if isinstance(data, dict):
        data = data.get("events")
    if not isinstance(data, list):
        raise HTTPError(422, "invalid", 'the body is {"events": [...]} (or a JSON array of events)')
    events = events_of(data)

    async def handler() -> Response:
        records = await publish_external(ctx, session_id, events)
        return json_response({"session": session_id, "seqs": [r.seq for r in records]})

    scope, credential = f"POST {request.url.path}", request_token(request)
    return await ctx.idempotency.run(scope, idempotency_key(request), credential, raw, handler)


routes = [
    Route("/v1/sessions", create_session, methods=["POST"]),
    Route("/v1/sessions", list_sessions, methods=["GET"]),
    Route("/v1/sessions/{session}", get_session, methods=["GET"]),
    Route("/v1/sessions/{session}", delete_session, methods=["DELETE"]),
    Route("/v1/sessions/{session}/title", rename_session, methods=["POST"]),
    Route("/v1/sessions/{session}/token", rotate_token, methods=["POST"]),
    Route("/v1/sessions/{session}/records", publish_records, methods=["POST"]),
]
