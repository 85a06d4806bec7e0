"""AG-UI over a session: CopilotKit / ``@ag-ui/client``'s ``HttpAgent``, unchanged.

``POST /v1/agui`` takes AG-UI's ``RunAgentInput`` (``threadId`` is the session id, the
session token is the bearer token) and answers with the AG-UI events (SSE) of one run:
one turn of the session, or the rest of it after an interrupt.

- The last message a user message this session has not seen (its id becomes the id of the
  user's message in the log): its text is sent as a turn; one it has seen: its turn again.
- ``resume`` entries answer the interrupts of the previous run (an approval each:
  ``status: "resolved"`` with ``payload.decision`` ``approve`` or ``deny``; ``cancelled``
  denies): the approvals are resolved and the rest of their turn streams; nothing is sent.
- ``tools``, ``context``, ``state`` and ``forwardedProps`` are accepted and not used.

The run opens with ``RUN_STARTED`` (the request's ``threadId`` and ``runId``). A message's
text is one text message (its id the message's), reasoning a reasoning message, a tool call
``TOOL_CALL_START``/``ARGS``/``END`` then ``TOOL_CALL_RESULT``; a job the turn starts is a
``CUSTOM`` event ``sessionwire.job`` (again as it changes). A pending approval ends the run
with ``RUN_FINISHED`` and an interrupt (``id`` the approval's, ``reason: "approval"``);
completed is ``RUN_FINISHED``, cancelled ``RUN_FINISHED`` with the ``cancelled`` outcome,
failed ``RUN_ERROR``, interrupted ``RUN_ERROR`` with code ``interrupted``. Every event has an
integer ``timestamp`` (the record's) and no optional field set to null.
"""

from __future__ import annotations

import datetime
import time
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

HEADERS = {"x-sessionwire-protocol": "agui"}

_encoder = msgspec.json.Encoder()


class AGUIEvents:
    """The AG-UI events of one run over one turn (see the module's docstring)."""

    def __init__(self, thread: str, run: str, turn: str) -> None:
        self.thread, self.run, self.turn = thread, run, turn
        self.done = False
        self.waiting: str | None = None
        self._ts = 0
        self._text: set[str] = set()  # text messages open
        self._reasoning: set[str] = set()  # reasoning messages open
        self._streamed: dict[str, list[str]] = {}  # what each message part streamed
        self._calls: set[str] = set()  # tool calls open (started, not ended)
        self._args: set[str] = set()  # tool calls whose arguments streamed
        self._approval: dict[str, Any] = {}  # the approval met last
        self._jobs: dict[str, dict[str, Any]] = {}

    def _event(self, kind: str, **fields: Any) -> bytes:
        body = {"type": kind, "timestamp": self._ts, **{k: v for k, v in fields.items() if v is not None}}
        return b"data: " + _encoder.encode(body) + b"\n\n"

    def opening(self) -> list[bytes]:
        self._ts = time.time_ns() // 1_000_000
        return [self._event("RUN_STARTED", threadId=self.thread, runId=self.run)]

    def closing(self) -> list[bytes]:
        return []

    def broken(self, reason: str) -> list[bytes]:
        self.done = True
        self._ts = time.time_ns() // 1_000_000
        return [
            *self._close(),
            self._event("RUN_ERROR", message=f"{reason}: run again to follow it", code="stream_ended"),
        ]

    def pause(self) -> list[bytes]:
        self.done = True
        approval = self._approval
        expires = approval.get("expires_at")
        interrupt = {
            "id": approval["approval"],
            "reason": "approval",
            "message": approval["action"],
            "toolCallId": approval.get("call"),
            "expiresAt": None if expires is None else _iso(expires),
        }
        outcome = {"type": "interrupt", "interrupts": [{k: v for k, v in interrupt.items() if v is not None}]}
        return [*self._close(), self._event("RUN_FINISHED", threadId=self.thread, runId=self.run, outcome=outcome)]

    def feed(self, record: Record) -> list[bytes]:
        self._ts = record.ts
        e: Any = record.event
        kind = record.type
        if kind == "job.started" and getattr(e, "turn", None) == self.turn:
            self._jobs[e.job] = {"job": e.job, "title": e.title, "status": "running"}
            return [self._job(e.job)]
        if kind.startswith("job.") and getattr(e, "job", None) in self._jobs:
            data = self._jobs[e.job]
            if kind == "job.progress":
                data["progress"] = {"done": e.done, "total": e.total}
            elif kind != "job.started":
                data["status"] = kind.split(".", 1)[1]
            return [self._job(e.job)]
        if getattr(e, "turn", None) != self.turn:
            return []
        if kind == "message.delta":
            return self._delta(e.message, e.part, e.kind, e.text)
        if kind == "message.completed" and e.role == "assistant":
            return self._completed(e)
        if kind.startswith("tool."):
            return self._tool(kind, e)
        if kind == "approval.requested":
            self.waiting = e.approval
            self._approval = {"approval": e.approval, "action": e.action, "call": e.call, "expires_at": e.expires_at}
            return []
        return self._terminal(kind, e)

    def _terminal(self, kind: str, e: Any) -> list[bytes]:
        if kind not in ("turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"):
            return []
        self.done = True
        out = self._close()
        if kind == "turn.completed":
            return [
                *out,
                self._event("RUN_FINISHED", threadId=self.thread, runId=self.run, outcome={"type": "success"}),
            ]
        if kind == "turn.cancelled":
            return [
                *out,
                self._event("RUN_FINISHED", threadId=self.thread, runId=self.run, outcome={"type": "cancelled"}),
            ]
        if kind == "turn.failed":
            return [*out, self._event("RUN_ERROR", message=e.error, code=e.code)]
        return [*out, self._event("RUN_ERROR", message=e.reason or "the turn was interrupted", code="interrupted")]

    def _delta(self, message: str, part: int, kind: str, text: str) -> list[bytes]:
        if not text:
            return []
        key = f"{message}:{part}"
        self._streamed.setdefault(key, []).append(text)  # joined once, at the end: not copied per delta
        if kind == "reasoning":
            out = []
            if key not in self._reasoning:
                self._reasoning.add(key)
                out += [self._event("REASONING_START", messageId=key)]
                out += [self._event("REASONING_MESSAGE_START", messageId=key, role="reasoning")]
            return [*out, self._event("REASONING_MESSAGE_CONTENT", messageId=key, delta=text)]
        out = []
        if message not in self._text:
            self._text.add(message)
            out.append(self._event("TEXT_MESSAGE_START", messageId=message, role="assistant"))
        return [*out, self._event("TEXT_MESSAGE_CONTENT", messageId=message, delta=text)]

    def _completed(self, e: Any) -> list[bytes]:
        out: list[bytes] = []
        for index, part in enumerate(e.parts):
            kind = part.__struct_config__.tag
            key = f"{e.message}:{index}"
            have = "".join(self._streamed.get(key, ()))
            if kind in ("text", "reasoning") and part.text.startswith(have):
                out += self._delta(e.message, index, kind, part.text[len(have) :])
                self._streamed[key] = [part.text]  # all it sent, in one piece (the pieces cost ~12x)
        return [*out, *self._close(e.message)]

    def _close(self, message: str | None = None) -> list[bytes]:
        """End the text and reasoning messages (of ``message``, or all) and the tool calls still open."""
        out = []
        for key in sorted(k for k in self._reasoning if message is None or k.startswith(message + ":")):
            self._reasoning.discard(key)
            out += [self._event("REASONING_MESSAGE_END", messageId=key), self._event("REASONING_END", messageId=key)]
        for text in sorted(m for m in self._text if message is None or m == message):
            self._text.discard(text)
            out.append(self._event("TEXT_MESSAGE_END", messageId=text))
        if message is None:
            for call in sorted(self._calls):
                out.append(self._event("TOOL_CALL_END", toolCallId=call))
            self._calls.clear()
        return out

    def _tool(self, kind: str, e: Any) -> list[bytes]:
        call, out = e.call, []
        if kind in ("tool.started", "tool.called") and call not in self._calls and call not in self._args:
            self._calls.add(call)
            out.append(self._event("TOOL_CALL_START", toolCallId=call, toolCallName=e.name, parentMessageId=e.message))
        if kind == "tool.args.delta" and call in self._calls and e.text:
            self._args.add(call)
            out.append(self._event("TOOL_CALL_ARGS", toolCallId=call, delta=e.text))
        elif kind == "tool.called" and call in self._calls:
            if call not in self._args and e.args:
                out.append(self._event("TOOL_CALL_ARGS", toolCallId=call, delta=e.args))
            self._calls.discard(call)
            self._args.add(call)  # ended: never started again
            out.append(self._event("TOOL_CALL_END", toolCallId=call))
        elif kind == "tool.result":
            if e.status == "completed":
                content = e.result if isinstance(e.result, str) else _encoder.encode(e.result).decode()
            else:
                content = e.error or e.status
            out.append(
                self._event(
                    "TOOL_CALL_RESULT", messageId=f"{call}:result", toolCallId=call, content=content, role="tool"
                )
            )
        return out

    def _job(self, job: str) -> bytes:
        return self._event("CUSTOM", name="sessionwire.job", value=dict(self._jobs[job]))


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).isoformat().replace("+00:00", "Z")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    raise HTTPError(422, "invalid", "a user message's content is a string or a list of parts")


def _decision(entry: dict[str, Any]) -> Literal["approve", "deny"]:
    payload = entry.get("payload")
    approved = entry.get("status") == "resolved" and isinstance(payload, dict) and payload.get("decision") == "approve"
    return "approve" if approved else "deny"


async def run(request: Request) -> Response:
    """``POST /v1/agui``: the AG-UI events of the run the request starts, or resumes."""
    ctx = context(request)
    data = decode_any(await read_body(request, ctx.settings.max_body))
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data[k] for k in ("threadId", "runId")):
        raise HTTPError(422, "invalid", 'the body is AG-UI\'s RunAgentInput: {"threadId", "runId", "messages": [...]}')
    messages, resume = data.get("messages"), data.get("resume") or []
    if not isinstance(messages, list) or not isinstance(resume, list):
        raise HTTPError(422, "invalid", "messages and resume are lists")
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise HTTPError(422, "invalid", "every message is an object with a role")
    if not all(isinstance(r, dict) and isinstance(r.get("interruptId"), str) for r in resume):
        raise HTTPError(422, "invalid", "every resume entry names its interruptId")
    session_id, run_id = data["threadId"], data["runId"]
    await ctx.authorize(session_id, request_token(request))
    hub, runtime = ctx.require_hub(), ctx.require_runtime()
    session = await hub.session(session_id)
    state = await session.state()
    if resume:
        first = resume[0]["interruptId"]
        approval = state.approvals.get(first)
        for entry in resume:  # all known, of one turn, before any is answered
            asked = state.approvals.get(entry["interruptId"])
            if asked is None or asked.turn is None or approval is None or asked.turn != approval.turn:
                raise HTTPError(
                    404,
                    "not_found",
                    f"session {session_id!r} has no interrupt {entry['interruptId']!r} of this run's turn",
                )
        assert approval is not None and approval.turn is not None
        for entry in resume:
            try:
                await runtime.resolve_approval(session_id, entry["interruptId"], _decision(entry))
            except Conflict:
                pass  # answered already: its turn goes on

        def requested(r: Record) -> bool:
            return r.type == "approval.requested" and getattr(r.event, "approval", None) == first

        after = await seq_before(hub.log, session_id, requested, first=requested)  # one request per approval
        return _stream(ctx, request, session, run_id, approval.turn, session.last_seq if after is None else after + 1)
    last = messages[-1] if messages else None
    if last is None or last.get("role") != "user":
        raise HTTPError(422, "invalid", "the last message is not the user's, and the run resumes no interrupt")
    message_id = last.get("id") if isinstance(last.get("id"), str) and last.get("id") else None
    text = _text(last.get("content"))
    if not text.strip() and (message_id is None or message_id not in state.messages):
        raise HTTPError(422, "invalid", "the last user message has no text")
    turn, after = await admit(ctx, session, message_id, text)
    return _stream(
        ctx, request, session, run_id, turn, await turn_start(ctx, session, turn) if after is None else after
    )


def _stream(ctx: Context, request: Request, session: Session, run_id: str, turn: str, after: int) -> TurnStream:
    credential = ctx.require_hub().credential(request_token(request), ctx.settings.admin_token)
    return TurnStream(ctx, session, after, AGUIEvents(session.id, run_id, turn), HEADERS, credential)


routes = [Route("/v1/agui", run, methods=["POST"])]
