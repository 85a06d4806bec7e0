"""Command routes: send a turn, start a job, cancel either, resolve an approval.

Each translates the request into one runtime call and returns at once: the work goes
on in the runtime and shows up in the session's records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .bodies import ResolveApproval, SendTurn, StartJob, decode, read_body
from .context import Context, context, request_token
from .responses import json_response
from .sessions import idempotency_key


async def send_turn(ctx: Context, session: str, body: SendTurn) -> dict[str, Any]:
    """Dispatch a turn: ``{"turn", "after", "policy"}`` (the policy says what happens if one runs)."""
    runtime = ctx.require_runtime()
    dispatched = await runtime.dispatch(session, body.text)
    return {"session": session, "turn": dispatched.turn, "after": dispatched.after, "policy": runtime.policy}


async def start_job(ctx: Context, session: str, body: StartJob) -> dict[str, Any]:
    """Start a background job: ``{"job", "after"}``."""
    started = await ctx.require_runtime().start_job(session, body.title, body.prompt)
    return {"session": session, "job": started.job, "after": started.after}


async def cancel_turn(ctx: Context, session: str, turn: str) -> dict[str, Any]:
    """Ask a running or queued turn to stop."""
    await ctx.require_runtime().cancel_turn(session, turn)
    return {"session": session, "turn": turn, "cancelling": True}


async def cancel_job(ctx: Context, session: str, job: str) -> dict[str, Any]:
    """Ask a running job to stop."""
    await ctx.require_runtime().cancel_job(session, job)
    return {"session": session, "job": job, "cancelling": True}


async def resolve_approval(ctx: Context, session: str, approval: str, body: ResolveApproval) -> dict[str, Any]:
    """Approve or deny a pending approval."""
    await ctx.require_runtime().resolve_approval(session, approval, body.decision, by=body.by)
    return {"session": session, "approval": approval, "decision": body.decision}


async def _command(
    request: Request,
    status: int,
    kind: type[Any] | None,
    run: Callable[[Context, str, Any], Awaitable[dict[str, Any]]],
) -> Response:
    ctx = context(request)
    session = request.path_params["session"]
    await ctx.authorize(session, request_token(request))
    raw = await read_body(request, ctx.settings.max_body)
    body = decode(raw, kind) if kind is not None else None

    async def handler() -> Response:
        return json_response(await run(ctx, session, body), status=status)

    scope, credential = f"POST {request.url.path}", request_token(request)
    return await ctx.idempotency.run(scope, idempotency_key(request), credential, raw, handler)


async def turns(request: Request) -> Response:
    """``POST /v1/sessions/{id}/turns {"text"}`` → 202 ``{"turn", "after"}``."""
    return await _command(request, 202, SendTurn, send_turn)


async def jobs(request: Request) -> Response:
    """``POST /v1/sessions/{id}/jobs {"title", "prompt"}`` → 202 ``{"job", "after"}``."""
    return await _command(request, 202, StartJob, start_job)


async def turn_cancel(request: Request) -> Response:
    """``POST /v1/sessions/{id}/turns/{turn}/cancel`` → 202."""
    turn = request.path_params["turn"]
    return await _command(request, 202, None, lambda ctx, session, _: cancel_turn(ctx, session, turn))


async def job_cancel(request: Request) -> Response:
    """``POST /v1/sessions/{id}/jobs/{job}/cancel`` → 202."""
    job = request.path_params["job"]
    return await _command(request, 202, None, lambda ctx, session, _: cancel_job(ctx, session, job))


async def approvals(request: Request) -> Response:
    """``POST /v1/sessions/{id}/approvals/{approval} {"decision", "by"?}`` → 200."""
    approval = request.path_params["approval"]

    async def run(ctx: Context, session: str, body: ResolveApproval) -> dict[str, Any]:
        return await resolve_approval(ctx, session, approval, body)

    return await _command(request, 200, ResolveApproval, run)


routes = [
    Route("/v1/sessions/{session}/turns", turns, methods=["POST"]),
    Route("/v1/sessions/{session}/turns/{turn}/cancel", turn_cancel, methods=["POST"]),
    Route("/v1/sessions/{session}/jobs", jobs, methods=["POST"]),
    Route("/v1/sessions/{session}/jobs/{job}/cancel", job_cancel, methods=["POST"]),
    Route("/v1/sessions/{session}/approvals/{approval}", approvals, methods=["POST"]),
]
