"""The Record envelope: an event once appended, encoded once.

A record is the envelope (``v``, ``session``, ``seq``, ``ts``) and the event's
fields, flat, in one JSON object. It is encoded once, at append, by splicing the
envelope in front of the event's JSON, and the same bytes are reused for the log,
every subscriber and every transport. Decoding ignores unknown fields and keeps
records of unknown types whole, as :class:`~sessionwire.events.UnknownEvent`. A
stored record of a known type whose fields do not validate (written by an older
version, or by hand) is kept whole too, as an :class:`OpaqueEvent`: one bad record
must not make a session unreadable.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, ClassVar

import msgspec

from ..errors import InvalidEvent
from .models import EVENT_TYPES, PROTOCOL_VERSION, AnyEvent, Event, UnknownEvent

_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)

ENVELOPE_KEYS = frozenset({"v", "session", "seq", "ts"})
"""The envelope's fields, which every record has besides its event's."""

encode_event = _encoder.encode
"""The JSON of an event without envelope (``{"type": ..., ...}``): ``encode_event(event) -> bytes``."""


class OpaqueEvent(UnknownEvent, frozen=True):
    """A stored event of a known type whose fields do not validate; kept whole and passed through.

    The fold ignores it; its record's ``raw`` bytes are re-sent as they are.

    Attributes:
        type: Its type tag, as written (a known one).
        data: Its other fields (without the envelope), as written.
        error: Why its fields did not validate.
    """

    error: str = ""


class _Envelope(msgspec.Struct):
    v: Annotated[int, msgspec.Meta(ge=1)]
    session: Annotated[str, msgspec.Meta(min_length=1)]
    seq: Annotated[int, msgspec.Meta(ge=1)]
    ts: Annotated[int, msgspec.Meta(ge=0)]
    type: Annotated[str, msgspec.Meta(min_length=1)]


_envelope_decoder = msgspec.json.Decoder(_Envelope)


@functools.lru_cache(maxsize=10_000)
def record_prefix(session: str) -> bytes:
    """The constant start of every record of a session, up to its ``seq`` value (cached: appends ask per batch)."""
    return b'{"v":%d,"session":%b,"seq":' % (PROTOCOL_VERSION, _encoder.encode(session))


def encode_record(prefix: bytes, seq: int, ts: int, event_json: bytes) -> bytes:
    """A record's wire JSON from its session's :func:`record_prefix` and its event's JSON.

    The event JSON is ``{"type":...}``: the envelope goes in front of its fields,
    so the event is encoded once and never decoded again.
    """
    return b'%b%d,"ts":%d,%b' % (prefix, seq, ts, event_json[1:])


class Record(msgspec.Struct, gc=False, eq=False):
    """An event as appended to a session's log: the envelope plus the event, flat.

    ``Record(session, seq, ts, event)`` encodes ``raw`` itself; the log passes the bytes
    it already made. A record holds no reference cycle, so the garbage collector does not
    track it (``gc=False``): building one is about twice as fast.

    Attributes:
        session: The session the record belongs to.
        seq: Its position in the session: 1, 2, 3, ... with no gap.
        ts: When it was appended, in ms since the epoch.
        event: The typed event (or an :class:`UnknownEvent`).
        raw: The record's wire-format JSON, encoded once.
    """

    session: str
    seq: int
    ts: int
    event: AnyEvent
    raw: bytes = b""

    v: ClassVar[int] = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        if not self.raw:
            self.raw = encode_record(record_prefix(self.session), self.seq, self.ts, _encode_any(self.event))

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
        return cls(session, seq, ts, event, encode_record(prefix or record_prefix(session), seq, ts, event_json))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Record:
        """Decode a record from its wire form; unknown fields are ignored, unknown types kept.

        The record keeps ``raw`` as given, so passing a record on re-sends the same bytes.

        Raises:
            InvalidEvent: not a JSON object with a valid envelope. A known type with bad
                fields is no error: its event is an :class:`OpaqueEvent`.
        """
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        try:
            env = _envelope_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise InvalidEvent(f"not a record: {exc}") from None
        event: AnyEvent
        if env.type in EVENT_TYPES:
            try:
                event = _event_decoder.decode(data)
            except msgspec.DecodeError as exc:
                # The envelope is fine (so the JSON is), only the event's fields are not.
                event = OpaqueEvent(
                    env.type, _fields(data), f"invalid {env.type} record {env.session}#{env.seq}: {exc}"
                )
        else:
            event = UnknownEvent(env.type, _fields(data))
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
        return (
            self.session == other.session
            and self.seq == other.seq
            and self.ts == other.ts
            and self.event == other.event
        )

    def __hash__(self) -> int:
        return hash((self.session, self.seq))

    def __repr__(self) -> str:
        """``Record(session='s_1', seq=2, ts=…, type='message.delta', message='m_1', part=0, text='Hel')``."""
        event = self.event
        fields = ((name, getattr(event, name)) for name in getattr(event, "__struct_fields__", ()) if name != "type")
        shown = "".join(f", {name}={value!r}" for name, value in fields if value is not None)
        return f"Record(session={self.session!r}, seq={self.seq}, ts={self.ts}, type={self.type!r}{shown})"


def _fields(data: bytes) -> dict[str, Any]:
    fields = msgspec.json.decode(data)
    return {k: v for k, v in fields.items() if k not in ENVELOPE_KEYS and k != "type"}


def _encode_any(event: AnyEvent) -> bytes:
    if isinstance(event, UnknownEvent):
        return _encoder.encode({"type": event.type, **event.data})
    return _encoder.encode(event)
