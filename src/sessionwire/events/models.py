"""The event models: one frozen model per event type, tagged by ``type``.

Field names for scope ids are always ``turn``, ``job``, ``message``, ``part``,
``call`` and ``approval``, and come first. msgspec checks a model's constraints
when it decodes or converts, not when one is built: :mod:`sessionwire.events.validation`
checks a built one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal, Union

import msgspec

PROTOCOL_VERSION = 1
"""Version of the wire format, carried as ``v`` in every record."""

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
OptId = Union[Id, None]


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


TurnId = Annotated[Id, _doc("The turn this belongs to.")]
OptTurn = Annotated[OptId, _doc("The turn this belongs to, if any.")]
JobId = Annotated[Id, _doc("The background job this belongs to.")]
OptJob = Annotated[OptId, _doc("The background job this belongs to, if any.")]
MessageId = Annotated[Id, _doc("The message this belongs to.")]
CallId = Annotated[Id, _doc("The tool call this belongs to.")]
ApprovalId = Annotated[Id, _doc("The approval this is about.")]
Count = Annotated[int, msgspec.Meta(ge=0)]
PartIndex = Annotated[int, msgspec.Meta(ge=0, le=10_000, description="Index of the part in its message.")]
Owner = Annotated[
    Union[str, None],
    _doc("Id of the runtime instance that runs this work; used to find work a dead process left open."),
]
Reason = Annotated[Union[str, None], _doc("Why it ended, in words, when known.")]
ErrorText = Annotated[str, _doc("What went wrong, in words a user can read.")]
ErrorCode = Annotated[Union[str, None], _doc("A stable machine-readable code for the error, when there is one.")]

Role = Literal["user", "assistant", "system"]
DeltaKind = Literal["text", "reasoning"]
Decision = Literal["approved", "denied", "expired"]
ToolStatus = Literal["streaming", "called", "completed", "failed", "denied"]


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event model: frozen, keyword-only, tagged by ``type``."""

    @property
    def type(self) -> str:
        """The event's type tag, e.g. ``message.delta``."""
        return self.__struct_config__.tag  # type: ignore[return-value]


# --------------------------------------------------------------------------- parts


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Token usage of a turn, as reported by the provider."""

    input_tokens: Annotated[Count, _doc("Tokens sent to the model.")] = 0
    output_tokens: Annotated[Count, _doc("Tokens the model produced.")] = 0


class TextPart(msgspec.Struct, frozen=True, kw_only=True, tag="text", tag_field="kind"):
    """Visible text of a message."""

    text: Annotated[str, _doc("The part's full text.")] = ""


class ReasoningPart(msgspec.Struct, frozen=True, kw_only=True, tag="reasoning", tag_field="kind"):
    """The model's reasoning, shown in its own lane."""

    text: Annotated[str, _doc("The part's full text.")] = ""


class ToolPart(msgspec.Struct, frozen=True, kw_only=True, tag="tool", tag_field="kind"):
    """A tool call made by the message: its arguments, status and result."""

    call: CallId
    name: Annotated[str, _doc("Name of the tool.")]
    args: Annotated[str, _doc("The arguments as JSON text (streamed by `tool.args.delta`).")] = ""
    status: Annotated[ToolStatus, _doc("streaming, called, completed, failed or denied.")] = "streaming"
    result: Annotated[Any, _doc("The tool's result (any JSON), once it has one.")] = None
    error: Annotated[Union[str, None], _doc("The error, when the tool failed.")] = None


Part = Union[TextPart, ReasoningPart, ToolPart]


# --------------------------------------------------------------------------- session


class SessionCreated(_Event, tag="session.created", frozen=True, kw_only=True):
    """The session exists. Always its first record."""

    title: Annotated[Union[str, None], _doc("A human title for the conversation.")] = None


class SessionRenamed(_Event, tag="session.renamed", frozen=True, kw_only=True):
    """The conversation has a new title; the latest one wins (`POST /v1/sessions/{id}/title`)."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=500), _doc("The new title.")]
    auto: Annotated[
        bool,
        _doc(
            "Named by the server from the first line of the first message: applies only while the "
            "conversation has no title, so it never overrides one a person gave."
        ),
    ] = False


# --------------------------------------------------------------------------- turns


class TurnStarted(_Event, tag="turn.started", frozen=True, kw_only=True):
    """A turn began: the agent is answering a user message."""

    turn: TurnId
    owner: Owner = None


class TurnCompleted(_Event, tag="turn.completed", frozen=True, kw_only=True):
    """The turn ended normally. Terminal."""

    turn: TurnId
    model: Annotated[Union[str, None], _doc("The model that answered, when known.")] = None
    usage: Annotated[Union[Usage, None], _doc("Token usage, when the provider reports it.")] = None


class TurnFailed(_Event, tag="turn.failed", frozen=True, kw_only=True):
    """The turn ended with an error. Terminal."""

    turn: TurnId
    error: ErrorText
    code: ErrorCode = None


class TurnCancelled(_Event, tag="turn.cancelled", frozen=True, kw_only=True):
    """The turn was stopped on request. Terminal."""

    turn: TurnId
    reason: Reason = None


class TurnInterrupted(_Event, tag="turn.interrupted", frozen=True, kw_only=True):
    """The process running the turn died; written by the one that noticed. Terminal."""

    turn: TurnId
    reason: Reason = None


# --------------------------------------------------------------------------- messages


class MessageStarted(_Event, tag="message.started", frozen=True, kw_only=True):
    """A message began; its parts follow as deltas and tool events."""

    turn: OptTurn = None
    job: OptJob = None
    message: MessageId
    role: Annotated[Role, _doc("user, assistant or system.")]


class MessageDelta(_Event, tag="message.delta", frozen=True, kw_only=True):
    """A fragment of text appended to one part of a message (ignored once the message is final)."""

    turn: OptTurn = None
    job: OptJob = None
    message: MessageId
    part: PartIndex
    kind: Annotated[DeltaKind, _doc("text or reasoning: the lane this part belongs to.")] = "text"
    text: Annotated[str, _doc("The fragment to append.")]


class MessageCompleted(_Event, tag="message.completed", frozen=True, kw_only=True):
    """The message is final. Its parts are authoritative and replace what the deltas built."""

    turn: OptTurn = None
    job: OptJob = None
    message: MessageId
    role: Annotated[Role, _doc("user, assistant or system.")]
    parts: Annotated[list[Part], _doc("The message's full, final list of parts.")]


# --------------------------------------------------------------------------- tools


class ToolStarted(_Event, tag="tool.started", frozen=True, kw_only=True):
    """The model began a tool call; it is part `part` of message `message`."""

    turn: OptTurn = None
    job: OptJob = None
    message: MessageId
    part: PartIndex
    call: CallId
    name: Annotated[str, _doc("Name of the tool.")]


class ToolArgsDelta(_Event, tag="tool.args.delta", frozen=True, kw_only=True):
    """A fragment of the tool call's JSON arguments (ignored once the message is final)."""

    turn: OptTurn = None
    job: OptJob = None
    message: MessageId
    part: PartIndex
    call: CallId
    text: Annotated[str, _doc("The fragment of argument text to append.")]


class ToolCalled(_Event, tag="tool.called", frozen=True, kw_only=True):
    """The arguments are complete and the tool is being run."""

    turn: OptTurn = None
    job: OptJob = None
    message: MessageId
    part: PartIndex
    call: CallId
    name: Annotated[str, _doc("Name of the tool.")]
    args: Annotated[str, _doc("The full arguments as JSON text.")]


class ToolResult(_Event, tag="tool.result", frozen=True, kw_only=True):
    """The tool finished (or failed, or was denied)."""

    turn: OptTurn = None
    job: OptJob = None
    message: MessageId
    part: PartIndex
    call: CallId
    status: Annotated[Literal["completed", "failed", "denied"], _doc("completed, failed or denied.")] = "completed"
    result: Annotated[Any, _doc("The tool's result, any JSON.")] = None
    error: Annotated[Union[str, None], _doc("The error, when the tool failed or was denied.")] = None


# --------------------------------------------------------------------------- jobs


class JobStarted(_Event, tag="job.started", frozen=True, kw_only=True):
    """A background job began. It lives as long as it runs, whatever started it."""

    turn: Annotated[OptId, _doc("The turn that started the job, if one did.")] = None
    job: JobId
    title: Annotated[str, _doc("What the job does, for people.")]
    owner: Owner = None


class JobProgress(_Event, tag="job.progress", frozen=True, kw_only=True):
    """How far the job is. Throttled by the producer."""

    job: JobId
    done: Annotated[int, msgspec.Meta(ge=0, description="Units of work done.")]
    total: Annotated[Union[Count, None], _doc("Units of work in all, when known.")] = None
    note: Annotated[Union[str, None], _doc("A short note on what it is doing.")] = None


class JobCompleted(_Event, tag="job.completed", frozen=True, kw_only=True):
    """The job ended normally. Terminal."""

    job: JobId
    summary: Annotated[Union[str, None], _doc("A short summary of the outcome.")] = None


class JobFailed(_Event, tag="job.failed", frozen=True, kw_only=True):
    """The job ended with an error. Terminal."""

    job: JobId
    error: ErrorText
    code: ErrorCode = None


class JobCancelled(_Event, tag="job.cancelled", frozen=True, kw_only=True):
    """The job was stopped on request. Terminal."""

    job: JobId
    reason: Reason = None


class JobInterrupted(_Event, tag="job.interrupted", frozen=True, kw_only=True):
    """The process running the job died; written by the one that noticed. Terminal."""

    job: JobId
    reason: Reason = None


# --------------------------------------------------------------------------- approvals


class ApprovalRequested(_Event, tag="approval.requested", frozen=True, kw_only=True):
    """A tool call waits for a person to approve or deny it."""

    turn: OptTurn = None
    job: OptJob = None
    call: Annotated[OptId, _doc("The tool call waiting for it, if any.")] = None
    approval: ApprovalId
    action: Annotated[str, _doc("What will run if approved, in words.")]
    expires_at: Annotated[
        Union[Count, None], _doc("When it expires unanswered, ms since the epoch (an `expired` resolution says so).")
    ] = None


class ApprovalResolved(_Event, tag="approval.resolved", frozen=True, kw_only=True):
    """The approval was answered, or expired. The first resolution of an approval wins."""

    turn: OptTurn = None
    job: OptJob = None
    approval: ApprovalId
    decision: Annotated[Decision, _doc("approved, denied or expired.")]
    by: Annotated[Union[str, None], _doc("Who resolved it, when known.")] = None


# --------------------------------------------------------------------------- misc


class Status(_Event, tag="status", frozen=True, kw_only=True):
    """A transient status line (e.g. "searching the web"); the end of its turn or job clears it."""

    turn: OptTurn = None
    job: OptJob = None
    text: Annotated[str, _doc("The status, in words.")]


class Error(_Event, tag="error", frozen=True, kw_only=True):
    """An error worth showing that does not end a turn or job by itself."""

    turn: OptTurn = None
    job: OptJob = None
    error: ErrorText
    code: ErrorCode = None


Event = Union[
    SessionCreated,
    SessionRenamed,
    TurnStarted,
    TurnCompleted,
    TurnFailed,
    TurnCancelled,
    TurnInterrupted,
    MessageStarted,
    MessageDelta,
    MessageCompleted,
    ToolStarted,
    ToolArgsDelta,
    ToolCalled,
    ToolResult,
    JobStarted,
    JobProgress,
    JobCompleted,
    JobFailed,
    JobCancelled,
    JobInterrupted,
    ApprovalRequested,
    ApprovalResolved,
    Status,
    Error,
]
"""The union of every v1 event model, discriminated by ``type``."""

EVENT_TYPES: dict[str, type[Any]] = {cls.__struct_config__.tag: cls for cls in Event.__args__}  # type: ignore[attr-defined]
"""Every v1 event type, by its tag."""

TERMINAL_TYPES = frozenset(
    {
        "turn.completed",
        "turn.failed",
        "turn.cancelled",
        "turn.interrupted",
        "job.completed",
        "job.failed",
        "job.cancelled",
        "job.interrupted",
    }
)
"""The types that end a turn or a job; each turn and job gets exactly one."""


class UnknownEvent(msgspec.Struct, frozen=True):
    """An event of a type this version does not know; kept whole and passed through.

    Attributes:
        type: Its type tag, as written.
        data: Its other fields (without the envelope), as written.
    """

    type: str
    data: dict[str, Any]


AnyEvent = Union[Event, UnknownEvent]
"""A v1 event or one of a type this version does not know."""


_OWNED_TYPES: frozenset[type[Any]] = frozenset(cls for cls in EVENT_TYPES.values() if "owner" in cls.__struct_fields__)
"""The models with an ``owner`` field: the work a runtime instance runs (today ``turn.started``, ``job.started``)."""


def event_owner(event: AnyEvent) -> str | None:
    """The ``owner`` field of ``event`` if its model declares one, else None.

    ``owner`` names the runtime instance that runs the work the event starts, so a store can
    index the work each runtime owns without naming the models that declare the field.
    """
    if type(event) in _OWNED_TYPES:
        return event.owner  # type: ignore[union-attr]
    return None


# --------------------------------------------------------------------------- lifecycle

SUBJECT_FIELDS = ("turn", "job", "approval")
"""The fields that name a subject with a lifecycle: a turn, a job, an approval."""

OPENING_TYPES = frozenset({"turn.started", "job.started", "approval.requested"})
"""The types that open their subject (the one their type's prefix names): once each."""

CLOSING_TYPES = TERMINAL_TYPES | {"approval.resolved"}
"""The types that close their subject: once each, only after it opened, and nothing names it after."""

Step = tuple[str, str, str]
"""``(action, kind, id)``: ``open``, ``close`` or ``name`` the subject ``kind`` (a field of
:data:`SUBJECT_FIELDS`) with that id."""


def _steps_of(tag: str, fields: Iterable[str]) -> tuple[tuple[str, str], ...]:
    kind = tag.split(".", 1)[0]
    out = []
    for field in fields:
        if field not in SUBJECT_FIELDS:
            continue
        action = "name"
        if field == kind and tag in OPENING_TYPES:
            action = "open"
        elif field == kind and tag in CLOSING_TYPES:
            action = "close"
        out.append((field, action))
    return tuple(out)


LIFECYCLE_FIELDS: dict[type[Any], tuple[tuple[str, str], ...]] = {
    cls: _steps_of(tag, cls.__struct_fields__) for tag, cls in EVENT_TYPES.items()
}
"""Per model: its subject fields and what each does (``open``, ``close``, ``name``), as
:func:`lifecycle_steps` reads them (for a store's hot path: one look-up per model)."""


def lifecycle_steps(event: AnyEvent) -> list[Step]:
    """What ``event`` does to the lifecycle of the turns, jobs and approvals it names, in order.

    The rule is generic, so a store enforces it without knowing the models: a type in
    :data:`OPENING_TYPES` opens the subject its prefix names, one in :data:`CLOSING_TYPES`
    closes it, and every other subject field only names its subject (which must not be
    closed). An event of an unknown type names the subjects its data carries.
    """
    if isinstance(event, UnknownEvent):
        data = event.data
        fields = _steps_of(event.type, (f for f in SUBJECT_FIELDS if isinstance(data.get(f), str)))
        return [(action, field, data[field]) for field, action in fields]
    out = []
    for field, action in LIFECYCLE_FIELDS[type(event)]:
        value = getattr(event, field)
        if value is not None:
            out.append((action, field, value))
    return out
