"""The typed event protocol: one frozen model per event type, and the Record envelope.

An *event* is what a producer publishes: a ``type`` tag plus its fields, without
envelope. A *record* is an event once the log has appended it: the envelope
(``v``, ``session``, ``seq``, ``ts``) and the event's fields, flat, in one JSON
object. A record is encoded once, at append, and the same bytes are reused for
the log, every subscriber and every transport.

Readers ignore unknown fields and keep records of unknown types as
:class:`UnknownEvent` instead of failing.
"""

from __future__ import annotations

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

    input_tokens: Annotated[int, _doc("Tokens sent to the model.")] = 0
    output_tokens: Annotated[int, _doc("Tokens the model produced.")] = 0


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

    message: MessageId
    role: Annotated[Role, _doc("user, assistant or system.")]
    turn: OptTurn = None
    job: OptJob = None


class MessageDelta(_Event, tag="message.delta", frozen=True, kw_only=True):
    """A fragment of text appended to one part of a message."""

    message: MessageId
    part: PartIndex
    kind: Annotated[DeltaKind, _doc("text or reasoning: the lane this part belongs to.")] = "text"
    text: Annotated[str, _doc("The fragment to append.")]
    turn: OptTurn = None
    job: OptJob = None


class MessageCompleted(_Event, tag="message.completed", frozen=True, kw_only=True):
    """The message is final. Its parts are authoritative and replace what the deltas built."""

    message: MessageId
    role: Annotated[Role, _doc("user, assistant or system.")]
    parts: Annotated[list[Part], _doc("The message's full, final list of parts.")]
    turn: OptTurn = None
    job: OptJob = None


# --------------------------------------------------------------------------- tools


class ToolStarted(_Event, tag="tool.started", frozen=True, kw_only=True):
    """The model began a tool call; it is part `part` of message `message`."""

    call: CallId
    name: Annotated[str, _doc("Name of the tool.")]
    message: MessageId
    part: PartIndex
    turn: OptTurn = None
    job: OptJob = None


class ToolArgsDelta(_Event, tag="tool.args.delta", frozen=True, kw_only=True):
    """A fragment of the tool call's JSON arguments."""

    call: CallId
    message: MessageId
    part: PartIndex
    text: Annotated[str, _doc("The fragment of argument text to append.")]
    turn: OptTurn = None
    job: OptJob = None


class ToolCalled(_Event, tag="tool.called", frozen=True, kw_only=True):
    """The arguments are complete and the tool is being run."""

    call: CallId
    name: Annotated[str, _doc("Name of the tool.")]
    message: MessageId
    part: PartIndex
    args: Annotated[str, _doc("The full arguments as JSON text.")]
    turn: OptTurn = None
    job: OptJob = None


class ToolResult(_Event, tag="tool.result", frozen=True, kw_only=True):
    """The tool finished (or failed, or was denied)."""

    call: CallId
    message: MessageId
    part: PartIndex
    result: Annotated[Any, _doc("The tool's result, any JSON.")] = None
    error: Annotated[Union[str, None], _doc("The error, when the tool failed or was denied.")] = None
    status: Annotated[Literal["completed", "failed", "denied"], _doc("completed, failed or denied.")] = "completed"
    turn: OptTurn = None
    job: OptJob = None


# --------------------------------------------------------------------------- jobs


class JobStarted(_Event, tag="job.started", frozen=True, kw_only=True):
    """A background job began. It lives as long as it runs, whatever started it."""

    job: JobId
    title: Annotated[str, _doc("What the job does, for people.")]
    turn: Annotated[OptId, _doc("The turn that started the job, if one did.")] = None
    owner: Owner = None


class JobProgress(_Event, tag="job.progress", frozen=True, kw_only=True):
    """How far the job is. Throttled by the producer."""

    job: JobId
    done: Annotated[int, msgspec.Meta(ge=0, description="Units of work done.")]
    total: Annotated[Union[int, None], _doc("Units of work in all, when known.")] = None
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

    approval: ApprovalId
    action: Annotated[str, _doc("What will run if approved, in words.")]
    call: Annotated[OptId, _doc("The tool call waiting for it, if any.")] = None
    expires_at: Annotated[Union[int, None], _doc("When it expires unanswered, ms since the epoch.")] = None
    turn: OptTurn = None
    job: OptJob = None


class ApprovalResolved(_Event, tag="approval.resolved", frozen=True, kw_only=True):
    """The approval was answered, or expired."""

    approval: ApprovalId
    decision: Annotated[Decision, _doc("approved, denied or expired.")]
    by: Annotated[Union[str, None], _doc("Who resolved it, when known.")] = None
    turn: OptTurn = None
    job: OptJob = None


# --------------------------------------------------------------------------- misc


class Status(_Event, tag="status", frozen=True, kw_only=True):
    """A transient status line (e.g. "searching the web")."""

    text: Annotated[str, _doc("The status, in words.")]
    turn: OptTurn = None
    job: OptJob = None


class Error(_Event, tag="error", frozen=True, kw_only=True):
    """An error worth showing that does not end a turn or job by itself."""

    error: ErrorText
    code: ErrorCode = None
    turn: OptTurn = None
    job: OptJob = None


Event = Union[
    SessionCreated,
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


class UnknownEvent(msgspec.Struct, frozen=True):
    """An event of a type this version does not know; kept whole and passed through."""

    type: str
    data: dict[str, Any]


AnyEvent = Union[Event, UnknownEvent]


class InvalidEvent(ValueError):
    """An event did not match the protocol (wrong type, missing or bad field)."""


_event_decoder = msgspec.json.Decoder(Event)
_encoder = msgspec.json.Encoder()


class _Envelope(msgspec.Struct):
    v: int
    session: str
    seq: int
    ts: int
    type: str


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_ENVELOPE_KEYS = frozenset({"v", "session", "seq", "ts"})


def to_event(value: AnyEvent | dict[str, Any]) -> Event:
    """Validate an event given as a model or as a plain dict in wire form (no envelope).

    Raises:
        InvalidEvent: the type is unknown or a field is missing or malformed.
    """
    if isinstance(value, _Event):
        return value
    if isinstance(value, UnknownEvent):
        raise InvalidEvent(f"unknown event type {value.type!r}")
    if not isinstance(value, dict):
        raise InvalidEvent(f"an event is a typed event or a dict, not {type(value).__name__}")
    kind = value.get("type")
    if kind not in EVENT_TYPES:
        raise InvalidEvent(f"unknown event type {kind!r}")
    try:
        return msgspec.convert({k: v for k, v in value.items() if k not in _ENVELOPE_KEYS}, EVENT_TYPES[kind])  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        raise InvalidEvent(f"{kind}: {exc}") from None


def encode_event(event: Event) -> bytes:
    """The JSON of an event without envelope (``{"type": ..., ...}``)."""
    return _encoder.encode(event)


class Record:
    """An event as appended to a session's log: the envelope plus the event, flat.

    Attributes:
        session: The session the record belongs to.
        seq: Its position in the session: 1, 2, 3, ... with no gap.
        ts: When it was appended, in ms since the epoch.
        event: The typed event (or an :class:`UnknownEvent`).
        raw: The record's wire-format JSON, encoded once.
    """

    __slots__ = ("event", "raw", "seq", "session", "ts")

    v = PROTOCOL_VERSION

    def __init__(self, session: str, seq: int, ts: int, event: AnyEvent, raw: bytes | None = None) -> None:
        self.session = session
        self.seq = seq
        self.ts = ts
        self.event = event
        if raw is None:
            raw = _splice(session, seq, ts, _encode_any(event))
        self.raw = raw

    @property
    def type(self) -> str:
        """The event's type tag."""
        return self.event.type

    @classmethod
    def from_event_json(
        cls, session: str, seq: int, ts: int, event: AnyEvent, event_json: bytes, prefix: bytes | None = None
    ) -> Record:
        """Build a record from an event and its already encoded JSON (the append path).

        ``prefix`` is :func:`record_prefix` of the session, passed by callers that append
        many records to one session so it is encoded once.
        """
        raw = b'%b%d,"ts":%d,%b' % (prefix or record_prefix(session), seq, ts, event_json[1:])
        return cls(session, seq, ts, event, raw)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Record:
        """Decode a record from its wire form; unknown fields are ignored, unknown types kept."""
        data = raw.encode() if isinstance(raw, str) else raw
        try:
            env = _envelope_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise InvalidEvent(f"not a record: {exc}") from None
        event: AnyEvent
        if env.type in EVENT_TYPES:
            try:
                event = _event_decoder.decode(data)
            except msgspec.ValidationError as exc:
                raise InvalidEvent(f"{env.type} record {env.session}#{env.seq}: {exc}") from None
        else:
            fields = msgspec.json.decode(data)
            event = UnknownEvent(env.type, {k: v for k, v in fields.items() if k not in _ENVELOPE_KEYS and k != "type"})
        return cls(env.session, env.seq, env.ts, event, data)

    def to_json(self) -> str:
        """The record's wire-format JSON (see DESIGN.md)."""
        return self.raw.decode()

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict in wire form."""
        return msgspec.json.decode(self.raw)  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return self.session == other.session and self.seq == other.seq and self.event == other.event

    def __hash__(self) -> int:
        return hash((self.session, self.seq))

    def __repr__(self) -> str:
        return f"Record(session={self.session!r}, seq={self.seq}, type={self.type!r})"


def _encode_any(event: AnyEvent) -> bytes:
    if isinstance(event, UnknownEvent):
        return _encoder.encode({"type": event.type, **event.data})
    return _encoder.encode(event)


def record_prefix(session: str) -> bytes:
    """The constant start of every record of a session, up to its ``seq`` value."""
    return b'{"v":%d,"session":%b,"seq":' % (PROTOCOL_VERSION, _encoder.encode(session))


def _splice(session: str, seq: int, ts: int, event_json: bytes) -> bytes:
    # event_json is '{"type":...}': put the envelope in front of its fields.
    return b'%b%d,"ts":%d,%b' % (record_prefix(session), seq, ts, event_json[1:])
