"""The Vercel AI SDK's chat protocol over a session: ``useChat`` with ``DefaultChatTransport``, unchanged.

``POST /v1/aisdk/chat`` takes the SDK's chat request (``id`` is the session id, the
session token is the bearer token) and answers with a UI message stream (SSE, header
``x-vercel-ai-ui-message-stream: v1``, ending ``data: [DONE]``) of one turn of the session:

- the last message a user message this session has not seen (its id is the id of the
  user's message in the log): its text is sent as a turn; one it has seen: its turn again;
- ``trigger: "regenerate-message"``: the last user text is sent again, as a new turn;
- an assistant message with ``approval-responded`` tool parts: the approvals are resolved,
  and the rest of their turn streams (nothing is dispatched).

``GET /v1/aisdk/chat/{id}/stream`` (the SDK's resume) replays the session's running (or
queued) turn from its beginning, whichever route or process started it, then follows it
live; 204 when none runs. The assistant message's id is the turn's id in every response,
so a resumed or continued response lands in the same message.

A turn maps to one assistant message: each of the turn's messages is a step; text and
reasoning deltas, tool calls (streamed arguments, results, errors, denials) and approvals
(``tool-approval-request``, then the response ends until the client answers) map to their
chunks; a job the turn starts is a ``data-job`` part (its id the job's), replaced in place
as it goes. ``turn.completed`` ends with ``finish``, ``turn.cancelled`` with ``abort``,
``turn.failed`` and ``turn.interrupted`` with ``error``.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..channel import Session
from ..errors import Conflict
from ..events import Record
from .bodies import decode_any, read_body
from .context import Context, context, request_token
from .errors import HTTPError
from .turnstream import TurnStream, admit, seq_before, turn_start

HEADERS = {"x-vercel-ai-ui-message-stream": "v1", "x-sessionwire-protocol": "aisdk"}

_encoder = msgspec.json.Encoder()
_TERMINAL = {"turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"}


def _frame(chunk: dict[str, Any]) -> bytes:
    return b"data: " + _encoder.encode(chunk) + b"\n\n"


class UIMessageChunks:
    """The UI message chunks of one turn (see the module's docstring)."""

    def __init__(self, turn: str) -> None:
        self.turn = turn
        self.done = False
        self.waiting: str | None = None
        self._step = False  # a step is open
        self._open: dict[str, str] = {}  # text or reasoning parts open: id -> kind
        self._streamed: dict[str, list[str]] = {}  # what each text or reasoning part streamed
        self._tools: set[str] = set()  # calls whose input started
        self._jobs: dict[str, dict[str, Any]] = {}  # the turn's jobs, as their data parts show them

    def opening(self) -> list[bytes]:
        return [_frame({"type": "start", "messageId": self.turn})]

    def closing(self) -> list[bytes]:
        return [b"data: [DONE]\n\n"]

    def broken(self, reason: str) -> list[bytes]:
        self.done = True
        chunks = [*self._end_step(), {"type": "error", "errorText": f"{reason}: resume to follow it"}]
        return [*(_frame(c) for c in chunks), *self.closing()]

    def pause(self) -> list[bytes]:
        self.done = True
        return [_frame(c) for c in [*self._end_step(), {"type": "finish", "finishReason": "tool-calls"}]]

    def feed(self, record: Record) -> list[bytes]:
        return [_frame(c) for c in self._chunks(record)]

    # ------------------------------------------------------------------ mapping

    def _chunks(self, record: Record) -> list[dict[str, Any]]:
        e: Any = record.event
        kind = record.type
        job = getattr(e, "job", None)
        if kind == "job.started" and getattr(e, "turn", None) == self.turn:
            self._jobs[e.job] = {"job": e.job, "title": e.title, "status": "running"}
            return [self._job(e.job)]
        if kind.startswith("job.") and job in self._jobs:
            return [self._job_update(kind, e)]
        if getattr(e, "turn", None) != self.turn:
            return []
        if kind in _TERMINAL:
            self.done = True
            out = self._end_step()
            if kind == "turn.completed":
                return [*out, {"type": "finish", "finishReason": "stop"}]
            if kind == "turn.cancelled":
                return [*out, {"type": "abort", "reason": e.reason or "cancelled"}]
            error = e.error if kind == "turn.failed" else f"interrupted: {e.reason or 'the turn was interrupted'}"
            return [*out, {"type": "error", "errorText": error}]
        if kind == "message.delta":
            return self._delta(f"{e.message}:{e.part}", e.kind, e.text)
        if kind == "message.completed" and e.role == "assistant":
            return self._completed(e)
        if kind.startswith("tool."):
            return self._tool(kind, e)
        if kind == "approval.requested" and e.call is not None:
            self.waiting = e.approval
            return [
                *self._start_step(),
                {"type": "tool-approval-request", "approvalId": e.approval, "toolCallId": e.call},
            ]
        return []

    def _start_step(self) -> list[dict[str, Any]]:
        if self._step:
            return []
        self._step = True
        return [{"type": "start-step"}]

    def _end_step(self) -> list[dict[str, Any]]:
        out = [{"type": f"{kind}-end", "id": part} for part, kind in self._open.items()]
        self._open.clear()
        if self._step:
            self._step = False
            out.append({"type": "finish-step"})
        return out

    def _delta(self, part: str, kind: str, text: str) -> list[dict[str, Any]]:
        out = self._start_step()
        if part not in self._open:
            self._open[part] = kind
            out.append({"type": f"{kind}-start", "id": part})
        self._streamed.setdefault(part, []).append(text)  # joined once, at the end: not copied per delta
        out.append({"type": f"{kind}-delta", "id": part, "delta": text})
        return out

    def _completed(self, e: Any) -> list[dict[str, Any]]:
        # The final parts are authoritative: what the deltas did not bring comes now.
        out: list[dict[str, Any]] = []
        for index, part in enumerate(e.parts):
            kind = part.__struct_config__.tag
            if kind not in ("text", "reasoning"):
                continue
            key = f"{e.message}:{index}"
            have = "".join(self._streamed.get(key, ()))
            if part.text.startswith(have):
                if len(part.text) > len(have):
                    out += self._delta(key, kind, part.text[len(have) :])
                self._streamed[key] = [part.text]  # all it sent, in one piece (the pieces cost ~12x)
        return [*out, *self._end_step()]

    def _tool(self, kind: str, e: Any) -> list[dict[str, Any]]:
        out = self._start_step()
        call = e.call
        if kind in ("tool.started", "tool.called") and call not in self._tools:
            self._tools.add(call)
            out.append({"type": "tool-input-start", "toolCallId": call, "toolName": e.name})
        if kind == "tool.args.delta" and call in self._tools:
            out.append({"type": "tool-input-delta", "toolCallId": call, "inputTextDelta": e.text})
        elif kind == "tool.called":
            try:
                arguments = msgspec.json.decode(e.args) if e.args else {}
            except msgspec.DecodeError:
                arguments = e.args
            out.append({"type": "tool-input-available", "toolCallId": call, "toolName": e.name, "input": arguments})
        elif kind == "tool.result":
            if e.status == "completed":
                out.append({"type": "tool-output-available", "toolCallId": call, "output": e.result})
            elif e.status == "denied":
                out.append({"type": "tool-output-denied", "toolCallId": call})
            else:
                out.append({"type": "tool-output-error", "toolCallId": call, "errorText": e.error or "the tool failed"})
        return out

    def _job(self, job: str) -> dict[str, Any]:
        return {"type": "data-job", "id": job, "data": dict(self._jobs[job])}

    def _job_update(self, kind: str, e: Any) -> dict[str, Any]:
        data = self._jobs[e.job]
        if kind == "job.progress":
            data["progress"] = {"done": e.done, "total": e.total}
        elif kind.split(".", 1)[1] in ("completed", "failed", "cancelled", "interrupted"):
            data["status"] = kind.split(".", 1)[1]
        return self._job(e.job)


# --------------------------------------------------------------------------- routes


def _text(message: dict[str, Any]) -> str:
    parts = message.get("parts")
    if not isinstance(parts, list):
        raise HTTPError(422, "invalid", "a message's parts are a list")
    return "".join(
        p["text"] for p in parts if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
    )


def _answers(messages: list[Any]) -> list[tuple[str, Literal["approve", "deny"]]]:
    """The approvals the client answered: the ``approval-responded`` tool parts of its last assistant message."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return []
        if message.get("role") != "assistant":
            continue
        parts = message.get("parts")
        out: list[tuple[str, Literal["approve", "deny"]]] = []
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, dict) or part.get("state") != "approval-responded":
                continue
            approval = part.get("approval")
            if isinstance(approval, dict) and isinstance(approval.get("id"), str):
                out.append((approval["id"], "approve" if approval.get("approved") is True else "deny"))
        return out
    return []


async def chat(request: Request) -> Response:
    """``POST /v1/aisdk/chat``: a UI message stream of the turn the request starts, or continues."""
    ctx = context(request)
    data = decode_any(await read_body(request, ctx.settings.max_body))
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("messages"), list):
        raise HTTPError(422, "invalid", 'the body is the AI SDK chat request: {"id", "messages": [...], "trigger"}')
    session_id, messages = data["id"], data["messages"]
    await ctx.authorize(session_id, request_token(request))
    if not all(isinstance(m, dict) and m.get("role") in ("user", "assistant", "system") for m in messages):
        raise HTTPError(422, "invalid", "every message is an object with a role (user, assistant or system)")
    hub, runtime = ctx.require_hub(), ctx.require_runtime()
    session = await hub.session(session_id)
    state = await session.state()
    answers = [(a, d) for a, d in _answers(messages) if a in state.approvals]
    if answers:
        turn = state.approvals[answers[0][0]].turn
        if turn is None or any(state.approvals[a].turn != turn for a, _ in answers):
            raise HTTPError(422, "invalid", "the answered approvals belong to no turn, or to several")
        for approval, decision in answers:
            try:
                await runtime.resolve_approval(session_id, approval, decision)
            except Conflict:
                pass  # answered already (a retried request, or another client): its turn goes on
        # What follows its request: its resolution, the tool's result, the rest of the turn.
        requested = functools.partial(_requests, approval=answers[0][0])
        after = await seq_before(hub.log, session_id, requested, first=requested)  # one request per approval
        return _stream(ctx, request, session, turn, session.last_seq if after is None else after + 1)
    last = messages[-1] if messages else None
    if last is None or last.get("role") != "user":
        raise HTTPError(422, "invalid", "the last message is not the user's, and it answers no approval")
    message_id = last.get("id") if isinstance(last.get("id"), str) and last.get("id") else None
    text = _text(last)
    if data.get("trigger") == "regenerate-message":
        message_id = None  # the same text again, as a new turn (its message has its own)
    if not text.strip() and (message_id is None or message_id not in state.messages):
        raise HTTPError(422, "invalid", "the last user message has no text")
    turn, after = await admit(ctx, session, message_id, text)
    return _stream(ctx, request, session, turn, await turn_start(ctx, session, turn) if after is None else after)


async def resume(request: Request) -> Response:
    """``GET /v1/aisdk/chat/{id}/stream``: the running (or queued) turn from its beginning; 204 if none."""
    ctx = context(request)
    session_id = request.path_params["session"]
    await ctx.authorize(session_id, request_token(request))
    hub = ctx.require_hub()
    session = await hub.session(session_id)
    state = await session.state()
    running = [t.id for t in state.turns.values() if t.status == "running"]
    if running:
        return _stream(ctx, request, session, running[-1], await turn_start(ctx, session, running[-1]))
    # Queued, nothing of it in the log yet: from here on. (A turn that ended leaves the line
    # just after its terminal: that one is over.)
    queued = [turn for turn, _ in await hub.store.membership.line(session_id) if turn not in state.turns]
    if queued:
        return _stream(ctx, request, session, queued[0], session.last_seq)
    return Response(status_code=204)


def _requests(record: Record, approval: str) -> bool:
    return record.type == "approval.requested" and getattr(record.event, "approval", None) == approval


def _stream(ctx: Context, request: Request, session: Session, turn: str, after: int) -> TurnStream:
    credential = ctx.require_hub().credential(request_token(request), ctx.settings.admin_token)
    return TurnStream(ctx, session, after, UIMessageChunks(turn), HEADERS, credential)


routes = [
    Route("/v1/aisdk/chat", chat, methods=["POST"]),
    Route("/v1/aisdk/chat/{session}/stream", resume, methods=["GET"]),
]
