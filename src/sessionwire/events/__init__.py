"""The typed event protocol: one frozen model per event type, tagged by ``type``.

An *event* is what a producer publishes: a ``type`` tag plus its fields, without
envelope. A *record* (:mod:`sessionwire.events.record`) is an event once the log has
appended it: the envelope (``v``, ``session``, ``seq``, ``ts``) and the event's fields,
flat, in one JSON object. Field names for scope ids are always ``turn``, ``job``,
``message``, ``part``, ``call`` and ``approval``, and come first.

Readers ignore unknown fields and keep records of unknown types as
:class:`UnknownEvent` instead of failing (and records of known types whose fields
do not validate as an opaque ``UnknownEvent``, see :mod:`sessionwire.events.record`).
:func:`to_event` validates both dicts and typed events (msgspec checks constraints
when it decodes or converts, not when a model is built;
:mod:`sessionwire.events.validation` checks a built one cheaply), so nothing that a
reader would reject is appended.

Layers, each importing only the ones above it: :mod:`~sessionwire.events.models` (the
models), then :mod:`~sessionwire.events.validation` and :mod:`~sessionwire.events.record`.
This package only re-exports them.
"""

from __future__ import annotations

from ..errors import InvalidEvent
from .models import (
    EVENT_TYPES,
    PROTOCOL_VERSION,
    TERMINAL_TYPES,
    AnyEvent,
    ApprovalId,
    ApprovalRequested,
    ApprovalResolved,
    CallId,
    Count,
    Decision,
    DeltaKind,
    Error,
    ErrorCode,
    ErrorText,
    Event,
    Id,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobId,
    JobInterrupted,
    JobProgress,
    JobStarted,
    MessageCompleted,
    MessageDelta,
    MessageId,
    MessageStarted,
    OptId,
    OptJob,
    OptTurn,
    Owner,
    Part,
    PartIndex,
    Reason,
    ReasoningPart,
    Role,
    SessionCreated,
    Status,
    TextPart,
    ToolArgsDelta,
    ToolCalled,
    ToolPart,
    ToolResult,
    ToolStarted,
    ToolStatus,
    TurnCancelled,
    TurnCompleted,
    TurnFailed,
    TurnId,
    TurnInterrupted,
    TurnStarted,
    UnknownEvent,
    Usage,
    event_owner,
)
from .record import ENVELOPE_KEYS, OpaqueEvent, Record, encode_event, encode_record, record_prefix
from .validation import CHECKS, check_event, to_event

__all__ = [
    "CHECKS",
    "ENVELOPE_KEYS",
    "EVENT_TYPES",
    "PROTOCOL_VERSION",
    "TERMINAL_TYPES",
    "AnyEvent",
    "ApprovalId",
    "ApprovalRequested",
    "ApprovalResolved",
    "CallId",
    "Count",
    "Decision",
    "DeltaKind",
    "Error",
    "ErrorCode",
    "ErrorText",
    "Event",
    "Id",
    "InvalidEvent",
    "JobCancelled",
    "JobCompleted",
    "JobFailed",
    "JobId",
    "JobInterrupted",
    "JobProgress",
    "JobStarted",
    "MessageCompleted",
    "MessageDelta",
    "MessageId",
    "MessageStarted",
    "OpaqueEvent",
    "OptId",
    "OptJob",
    "OptTurn",
    "Owner",
    "Part",
    "PartIndex",
    "Reason",
    "ReasoningPart",
    "Record",
    "Role",
    "SessionCreated",
    "Status",
    "TextPart",
    "ToolArgsDelta",
    "ToolCalled",
    "ToolPart",
    "ToolResult",
    "ToolStarted",
    "ToolStatus",
    "TurnCancelled",
    "TurnCompleted",
    "TurnFailed",
    "TurnId",
    "TurnInterrupted",
    "TurnStarted",
    "UnknownEvent",
    "Usage",
    "check_event",
    "encode_event",
    "encode_record",
    "event_owner",
    "record_prefix",
    "to_event",
]
