"""The fold: records in, a session's conversation state out.

``fold(state, record)`` is pure and never reads a clock. :func:`apply` is the same
step done in place, for the hub, which keeps each open session's state current
as records are appended. The same fold exists in TypeScript (``@sessionwire/client``,
``clients/typescript/src/fold.ts``); ``tests/vectors/*.json`` prove both give the same state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from . import events as ev
from .events import Record
from .state_model import (
    ApprovalState,
    ApprovalStatus,
    Ending,
    ErrorEntry,
    JobState,
    MessageState,
    MessageStatus,
    PartState,
    Progress,
    ReasoningPart,
    SessionState,
    StatusLine,
    TextPart,
    ToolPart,
    TurnState,
    TurnStatus,
    Usage,
)

__all__ = [
    "ApprovalState",
    "ApprovalStatus",
    "Ending",
    "ErrorEntry",
    "JobState",
    "MessageState",
    "MessageStatus",
    "PartState",
    "Progress",
    "ReasoningPart",
    "SessionState",
    "StatusLine",
    "TextPart",
    "ToolPart",
    "TurnState",
    "TurnStatus",
    "Usage",
    "apply",
    "fold",
    "fold_records",
]


def fold(state: SessionState | None, record: Record) -> SessionState:
    """Return the state after ``record``; ``state`` itself is left untouched.

    Records with ``seq <= state.seq`` are ignored, so replays and duplicates are harmless.

    Raises:
        ValueError: the record belongs to another session than the state.
    """
    new = SessionState() if state is None else state.copy()
    return apply(new, record)


def fold_records(records: Iterable[Record], state: SessionState | None = None) -> SessionState:
    """Fold many records, starting from a copy of ``state`` (or an empty state)."""
    new = SessionState() if state is None else state.copy()
    for record in records:
        apply(new, record)
    return new


def apply(state: SessionState, record: Record) -> SessionState:
    """Fold ``record`` into ``state`` in place and return it (the hub's incremental step).

    Raises:
        ValueError: the record belongs to another session than the state.
    """
    if state.session is not None and record.session != state.session:
        raise ValueError(f"record {record.session}#{record.seq} does not belong to session {state.session}")
    if record.seq <= state.seq:
        return state
    state.seq = record.seq
    state.session = record.session
    state.updated_at = record.ts
    # By the event's class: an unknown event, or an opaque one (a known type whose stored
    # fields did not validate), has none and is skipped.
    handler = _BY_CLASS.get(record.event.__class__)
    if handler is not None:
        handler(state, record.event, record)
    return state


# --------------------------------------------------------------------------- turns and jobs


def _turn(state: SessionState, turn_id: str) -> TurnState:
    turn = state.turns.get(turn_id)
    if turn is None:
        turn = state.turns[turn_id] = TurnState(id=turn_id)
    return turn


def _job(state: SessionState, job_id: str) -> JobState:
    job = state.jobs.get(job_id)
    if job is None:
        job = state.jobs[job_id] = JobState(id=job_id)
    return job


def _session_created(state: SessionState, e: ev.SessionCreated, r: Record) -> None:
    state.title = e.title
    state.created_at = r.ts


def _session_renamed(state: SessionState, e: ev.SessionRenamed, r: Record) -> None:
    if not e.auto or state.title is None:  # a name given by the server never replaces one a person gave
        state.title = e.title


def _turn_started(state: SessionState, e: ev.TurnStarted, r: Record) -> None:
    turn = _turn(state, e.turn)
    if turn.status == "running":  # a turn that already ended never restarts
        turn.owner = e.owner


def _ended(state: SessionState, messages: list[str], status: Ending, turn: str | None, job: str | None) -> None:
    # A terminal closes every message of its turn or job still streaming, and clears its status line.
    for message_id in messages:
        message = state.messages[message_id]
        if message.status == "streaming":
            message.status = status
    line = state.status
    if line is not None and (line.job == job if line.job is not None else line.turn == turn):
        state.status = None


def _turn_ended(status: Ending) -> Any:
    def handler(state: SessionState, e: Any, r: Record) -> None:
        turn = _turn(state, e.turn)
        if turn.status != "running":
            return  # the first terminal event wins
        turn.status = status
        if status == "completed":
            turn.model = e.model
            turn.usage = None if e.usage is None else Usage(**msgspec.structs.asdict(e.usage))
        elif status == "failed":
            turn.error, turn.code = e.error, e.code
        else:
            turn.reason = e.reason
        _ended(state, turn.messages, status, turn.id, None)

    return handler


def _job_started(state: SessionState, e: ev.JobStarted, r: Record) -> None:
    job = _job(state, e.job)
    if job.status == "running":  # a job that already ended never restarts
        job.title, job.turn, job.owner = e.title, e.turn, e.owner


def _job_progress(state: SessionState, e: ev.JobProgress, r: Record) -> None:
    job = _job(state, e.job)
    if job.status == "running":
        job.progress = Progress(done=e.done, total=e.total, note=e.note)


def _job_ended(status: Ending) -> Any:
    def handler(state: SessionState, e: Any, r: Record) -> None:
        job = _job(state, e.job)
        if job.status != "running":
            return  # the first terminal event wins
        job.status = status
        if status == "completed":
            job.summary = e.summary
        elif status == "failed":
            job.error, job.code = e.error, e.code
        else:
            job.reason = e.reason
        _ended(state, job.messages, status, None, job.id)

    return handler


# --------------------------------------------------------------------------- messages


def _message(state: SessionState, message_id: str, turn: str | None, job: str | None) -> MessageState:
    message = state.messages.get(message_id)
    if message is None:
        message = state.messages[message_id] = MessageState(id=message_id, turn=turn, job=job)
        state.message_order.append(message_id)
        # A message belongs to its job if it has one, else to its turn; one that first
        # appears after its owner ended starts closed, so nothing is left streaming.
        owner: TurnState | JobState | None = None
        if job is not None:
            owner = _job(state, job)
        elif turn is not None:
            owner = _turn(state, turn)
        if owner is not None:
            owner.messages.append(message_id)
            if owner.status != "running":
                message.status = owner.status
    return message


def _message_started(state: SessionState, e: ev.MessageStarted, r: Record) -> None:
    _message(state, e.message, e.turn, e.job).role = e.role


def _part(parts: list[PartState], index: int) -> None:
    while len(parts) <= index:
        parts.append(TextPart())


def _message_delta(state: SessionState, e: ev.MessageDelta, r: Record) -> None:
    message = _message(state, e.message, e.turn, e.job)
    if message.status != "streaming":
        return  # the final body is authoritative; a late delta never changes it
    parts = message.parts
    _part(parts, e.part)
    part = parts[e.part]
    if e.kind == "reasoning":
        if not isinstance(part, ReasoningPart):
            part = parts[e.part] = ReasoningPart()
    elif not isinstance(part, TextPart):
        part = parts[e.part] = TextPart()
    _grow(part, "text", e.text)


def _grow(part: Any, field: str, more: str) -> None:
    # Not ``part.text += more``, which copies the whole text per delta (a long reply would fold in
    # quadratic time): with its one reference in a local, ``+=`` grows it in place. Kept whole if
    # ``more`` is bad (an event built by hand, unchecked).
    text = getattr(part, field)
    setattr(part, field, "")
    try:
        text += more
    finally:
        setattr(part, field, text)


def _message_completed(state: SessionState, e: ev.MessageCompleted, r: Record) -> None:
    message = _message(state, e.message, e.turn, e.job)
    message.role = e.role
    message.status = "completed"
    message.parts = [_part_state(p) for p in e.parts]


def _part_state(part: ev.Part) -> PartState:
    if isinstance(part, ev.ToolPart):
        return ToolPart(
            call=part.call, name=part.name, args=part.args, status=part.status, result=part.result, error=part.error
        )
    if isinstance(part, ev.ReasoningPart):
        return ReasoningPart(text=part.text)
    return TextPart(text=part.text)


# --------------------------------------------------------------------------- tools


def _streaming_tool(state: SessionState, e: ev.ToolStarted | ev.ToolArgsDelta) -> ToolPart | None:
    # tool.started and tool.args.delta are stream fragments: only a streaming message takes them.
    message = _message(state, e.message, e.turn, e.job)
    if message.status != "streaming":
        return None
    parts = message.parts
    _part(parts, e.part)
    part = parts[e.part]
    if not isinstance(part, ToolPart) or part.call != e.call:
        part = parts[e.part] = ToolPart(call=e.call, name="")
    return part


def _tool(state: SessionState, e: ev.ToolCalled | ev.ToolResult) -> ToolPart | None:
    # tool.called and tool.result are facts about a call: they update its part, found by
    # call id, also once the message is final (a tool often finishes after its message).
    message = _message(state, e.message, e.turn, e.job)
    parts = message.parts
    if e.part < len(parts):
        part = parts[e.part]
        if isinstance(part, ToolPart) and part.call == e.call:
            return part
    for part in parts:
        if isinstance(part, ToolPart) and part.call == e.call:
            return part
    if message.status != "streaming":
        return None
    _part(parts, e.part)
    new = parts[e.part] = ToolPart(call=e.call, name="")
    return new


def _tool_started(state: SessionState, e: ev.ToolStarted, r: Record) -> None:
    part = _streaming_tool(state, e)
    if part is not None:
        part.name = e.name


def _tool_args_delta(state: SessionState, e: ev.ToolArgsDelta, r: Record) -> None:
    part = _streaming_tool(state, e)
    if part is not None and part.status == "streaming":
        _grow(part, "args", e.text)


def _tool_called(state: SessionState, e: ev.ToolCalled, r: Record) -> None:
    part = _tool(state, e)
    if part is not None:
        part.name, part.args, part.status = e.name, e.args, "called"


def _tool_result(state: SessionState, e: ev.ToolResult, r: Record) -> None:
    part = _tool(state, e)
    if part is not None:
        part.status, part.result, part.error = e.status, e.result, e.error


# --------------------------------------------------------------------------- approvals, status, errors


def _approval_requested(state: SessionState, e: ev.ApprovalRequested, r: Record) -> None:
    approval = state.approvals.get(e.approval)
    if approval is None:
        approval = state.approvals[e.approval] = ApprovalState(id=e.approval)
    # A repeated request updates the details but never reopens a resolved approval.
    approval.action, approval.call, approval.expires_at = e.action, e.call, e.expires_at
    approval.turn, approval.job = e.turn, e.job


def _approval_resolved(state: SessionState, e: ev.ApprovalResolved, r: Record) -> None:
    approval = state.approvals.get(e.approval)
    if approval is None:
        approval = state.approvals[e.approval] = ApprovalState(id=e.approval, turn=e.turn, job=e.job)
    elif approval.status != "pending":
        return  # the first resolution wins
    approval.status = e.decision
    approval.by = e.by


def _status(state: SessionState, e: ev.Status, r: Record) -> None:
    state.status = StatusLine(text=e.text, turn=e.turn, job=e.job)


def _error(state: SessionState, e: ev.Error, r: Record) -> None:
    state.errors.append(ErrorEntry(seq=r.seq, error=e.error, code=e.code, turn=e.turn, job=e.job))


_HANDLERS: dict[str, Any] = {
    "session.created": _session_created,
    "session.renamed": _session_renamed,
    "turn.started": _turn_started,
    "turn.completed": _turn_ended("completed"),
    "turn.failed": _turn_ended("failed"),
    "turn.cancelled": _turn_ended("cancelled"),
    "turn.interrupted": _turn_ended("interrupted"),
    "message.started": _message_started,
    "message.delta": _message_delta,
    "message.completed": _message_completed,
    "tool.started": _tool_started,
    "tool.args.delta": _tool_args_delta,
    "tool.called": _tool_called,
    "tool.result": _tool_result,
    "job.started": _job_started,
    "job.progress": _job_progress,
    "job.completed": _job_ended("completed"),
    "job.failed": _job_ended("failed"),
    "job.cancelled": _job_ended("cancelled"),
    "job.interrupted": _job_ended("interrupted"),
    "approval.requested": _approval_requested,
    "approval.resolved": _approval_resolved,
    "status": _status,
    "error": _error,
}

_BY_CLASS: dict[type[Any], Any] = {ev.EVENT_TYPES[tag]: handler for tag, handler in _HANDLERS.items()}
