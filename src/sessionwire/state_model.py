"""The conversation state's shape: what the fold (:mod:`sessionwire.state`) produces.

Snapshots, ``snapshot`` control frames and ``GET /v1/sessions/{id}`` carry it as JSON; the
TypeScript client's types are generated from its schema.
"""

from __future__ import annotations

from typing import Any, Literal, Union

import msgspec

from . import events as ev

Ending = Literal["completed", "failed", "cancelled", "interrupted"]
TurnStatus = Literal["running", Ending]
MessageStatus = Literal["streaming", "completed", "failed", "cancelled", "interrupted"]
ApprovalStatus = Literal["pending", "approved", "denied", "expired"]


class TextPart(msgspec.Struct, kw_only=True, tag="text", tag_field="kind"):
    """Visible text of a message."""

    text: str = ""


class ReasoningPart(msgspec.Struct, kw_only=True, tag="reasoning", tag_field="kind"):
    """The model's reasoning."""

    text: str = ""


class ToolPart(msgspec.Struct, kw_only=True, tag="tool", tag_field="kind"):
    """A tool call: streamed arguments, status and result."""

    call: str
    name: str
    args: str = ""
    status: ev.ToolStatus = "streaming"
    result: Any = None
    error: str | None = None


PartState = Union[TextPart, ReasoningPart, ToolPart]


class Usage(msgspec.Struct, kw_only=True):
    """Token usage of a turn."""

    input_tokens: int = 0
    output_tokens: int = 0


class TurnState(msgspec.Struct, kw_only=True):
    """One turn: its status and the ids of its messages."""

    id: str
    status: TurnStatus = "running"
    owner: str | None = None
    messages: list[str] = msgspec.field(default_factory=list)
    model: str | None = None
    usage: Usage | None = None
    error: str | None = None
    code: str | None = None
    reason: str | None = None


class MessageState(msgspec.Struct, kw_only=True):
    """One message: who wrote it, where it belongs and its ordered parts."""

    id: str
    role: ev.Role = "assistant"
    turn: str | None = None
    job: str | None = None
    status: MessageStatus = "streaming"
    parts: list[PartState] = msgspec.field(default_factory=list)


class Progress(msgspec.Struct, kw_only=True):
    """How far a job is."""

    done: int = 0
    total: int | None = None
    note: str | None = None


class JobState(msgspec.Struct, kw_only=True):
    """One background job: title, status, progress and its messages."""

    id: str
    title: str = ""
    status: TurnStatus = "running"
    turn: str | None = None
    owner: str | None = None
    progress: Progress | None = None
    messages: list[str] = msgspec.field(default_factory=list)
    summary: str | None = None
    error: str | None = None
    code: str | None = None
    reason: str | None = None


class ApprovalState(msgspec.Struct, kw_only=True):
    """One approval: what it is for and how it was resolved."""

    id: str
    action: str = ""
    call: str | None = None
    turn: str | None = None
    job: str | None = None
    expires_at: int | None = None
    status: ApprovalStatus = "pending"
    by: str | None = None


class ErrorEntry(msgspec.Struct, kw_only=True):
    """An `error` record, kept in the order it came."""

    seq: int
    error: str
    code: str | None = None
    turn: str | None = None
    job: str | None = None


class StatusLine(msgspec.Struct, kw_only=True):
    """The latest `status` record."""

    text: str
    turn: str | None = None
    job: str | None = None


class SessionState(msgspec.Struct, kw_only=True):
    """A session's conversation, folded from its records up to ``seq``."""

    seq: int = 0
    session: str | None = None
    title: str | None = None
    created_at: int | None = None
    updated_at: int | None = None
    turns: dict[str, TurnState] = msgspec.field(default_factory=dict)
    messages: dict[str, MessageState] = msgspec.field(default_factory=dict)
    message_order: list[str] = msgspec.field(default_factory=list)
    jobs: dict[str, JobState] = msgspec.field(default_factory=dict)
    approvals: dict[str, ApprovalState] = msgspec.field(default_factory=dict)
    errors: list[ErrorEntry] = msgspec.field(default_factory=list)
    status: StatusLine | None = None

    def to_dict(self) -> dict[str, Any]:
        """The state as plain JSON data (the form of the test vectors and the wire)."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]

    def to_json(self) -> bytes:
        """The state as JSON bytes."""
        return _encoder.encode(self)

    def copy(self) -> SessionState:
        """A deep copy that shares the strings (they cannot change): no text is copied."""
        return self.from_dict(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionState:
        """Rebuild a state from :meth:`to_dict` output."""
        return msgspec.convert(data, cls)

    @classmethod
    def from_json(cls, data: bytes) -> SessionState:
        """Rebuild a state from :meth:`to_json` output."""
        return _decoder.decode(data)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(SessionState)
