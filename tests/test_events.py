"""The typed events and the Record envelope: round trips, tolerance, validation, wire shape."""

from __future__ import annotations

import enum
import json
import re
import typing
from typing import Any

import msgspec
import pytest

from sessionwire import events as ev
from sessionwire.events import (
    EVENT_TYPES,
    PROTOCOL_VERSION,
    TERMINAL_TYPES,
    InvalidEvent,
    Record,
    UnknownEvent,
    encode_event,
    encode_record,
    event_owner,
    record_prefix,
    to_event,
)
from sessionwire.record import OpaqueEvent
from sessionwire.state import fold_records
from sessionwire.validation import CHECKS

TS = 1732400000123

ALL_EVENTS: list[ev.Event] = [
    ev.SessionCreated(title="Trip to Lisbon"),
    ev.SessionRenamed(title="Lisbon, May"),
    ev.TurnStarted(turn="t_1", owner="worker-1"),
    ev.TurnCompleted(turn="t_1", model="gpt-x", usage=ev.Usage(input_tokens=12, output_tokens=34)),
    ev.TurnFailed(turn="t_1", error="the provider timed out", code="provider_timeout"),
    ev.TurnCancelled(turn="t_1", reason="stopped by the user"),
    ev.TurnInterrupted(turn="t_1", reason="worker-1 died"),
    ev.MessageStarted(turn="t_1", message="m_1", role="assistant"),
    ev.MessageDelta(turn="t_1", message="m_1", part=0, kind="reasoning", text="Let me think…"),
    ev.MessageCompleted(
        turn="t_1",
        message="m_1",
        role="assistant",
        parts=[
            ev.ReasoningPart(text="Let me think…"),
            ev.TextPart(text="Héllo 👋"),
            ev.ToolPart(call="c_1", name="search", args='{"q":"x"}', status="completed", result={"hits": [1, 2]}),
        ],
    ),
    ev.ToolStarted(turn="t_1", message="m_1", part=2, call="c_1", name="search"),
    ev.ToolArgsDelta(turn="t_1", message="m_1", part=2, call="c_1", text='{"q":'),
    ev.ToolCalled(turn="t_1", message="m_1", part=2, call="c_1", name="search", args='{"q":"x"}'),
    ev.ToolResult(turn="t_1", message="m_1", part=2, call="c_1", status="failed", error="rate limited"),
    ev.JobStarted(turn="t_1", job="j_1", title="Index the docs", owner="worker-2"),
    ev.JobProgress(job="j_1", done=3, total=10, note="page 3"),
    ev.JobCompleted(job="j_1", summary="10 pages"),
    ev.JobFailed(job="j_1", error="disk full", code="io"),
    ev.JobCancelled(job="j_1", reason="superseded"),
    ev.JobInterrupted(job="j_1", reason="worker-2 died"),
    ev.ApprovalRequested(turn="t_1", call="c_1", approval="a_1", action="run `rm -rf build`", expires_at=TS + 60_000),
    ev.ApprovalResolved(turn="t_1", approval="a_1", decision="denied", by="ana"),
    ev.Status(job="j_1", text="searching the web"),
    ev.Error(turn="t_1", error="a tool crashed", code="tool_crash"),
]

SCOPE_IDS = {"turn", "job", "message", "part", "call", "approval"}


def _record(event: ev.Event, seq: int = 7, session: str = "s_1") -> Record:
    return Record(session, seq, TS, event)


def test_every_type_has_a_sample() -> None:
    assert [e.type for e in ALL_EVENTS] == list(EVENT_TYPES)
    assert len(EVENT_TYPES) == 24
    assert TERMINAL_TYPES == {
        f"{scope}.{end}" for scope in ("turn", "job") for end in ("completed", "failed", "cancelled", "interrupted")
    }


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.type)
def test_record_round_trip(event: ev.Event) -> None:
    record = _record(event)
    for wire in (record.raw, record.to_json()):
        back = Record.from_json(wire)
        assert back == record
        assert back.event == event
        assert type(back.event) is type(event)
        assert (back.session, back.seq, back.ts, back.type) == ("s_1", 7, TS, event.type)
        assert back.raw == record.raw
    data = json.loads(record.to_json())
    assert data == record.to_dict()
    assert list(data)[:5] == ["v", "session", "seq", "ts", "type"]
    assert data["v"] == PROTOCOL_VERSION == record.v


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.type)
def test_dict_round_trip(event: ev.Event) -> None:
    # A plain dict in wire form (what `session.publish` accepts) validates to the same event,
    # with or without the envelope.
    assert to_event(msgspec.to_builtins(event)) == event
    assert to_event(_record(event).to_dict()) == event
    assert to_event(event) is event


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.type)
def test_append_path_gives_the_same_bytes(event: ev.Event) -> None:
    prefix = record_prefix("s_1")
    expected = _record(event).raw
    assert Record.from_event_json("s_1", 7, TS, event, encode_event(event), prefix).raw == expected
    assert Record.from_event_json("s_1", 7, TS, event, encode_event(event)).raw == expected
    assert encode_record(prefix, 7, TS, encode_event(event)) == expected


def test_record_matches_the_design_example() -> None:
    # DESIGN.md, "The wire format": the same keys, values and order.
    design = (
        '{"v": 1, "session": "s_7f3a", "seq": 42, "ts": 1732400000123,\n'
        ' "type": "message.delta", "turn": "t_2", "job": null,\n'
        ' "message": "m_9", "part": 0, "kind": "text", "text": "Hel"}'
    )
    record = Record("s_7f3a", 42, 1732400000123, ev.MessageDelta(turn="t_2", message="m_9", part=0, text="Hel"))
    assert json.loads(record.to_json()) == json.loads(design)
    assert record.to_json() == json.dumps(json.loads(design), separators=(",", ":"))


def test_session_ids_are_escaped() -> None:
    record = Record('s "quoted" \\ é', 1, 0, ev.Status(text="x"))
    assert json.loads(record.to_json())["session"] == 's "quoted" \\ é'
    assert Record.from_json(record.raw) == record


def test_unknown_fields_are_ignored() -> None:
    data = _record(ev.MessageDelta(turn="t_1", message="m_1", part=0, text="Hi")).to_dict()
    data["x_future"] = {"nested": [1, 2]}
    data["priority"] = "high"
    raw = json.dumps(data).encode()
    record = Record.from_json(raw)
    assert record.event == ev.MessageDelta(turn="t_1", message="m_1", part=0, text="Hi")
    assert record.raw == raw  # passed on as received
    assert to_event({k: v for k, v in data.items()}) == record.event


def test_missing_optional_fields_take_their_defaults() -> None:
    record = Record.from_json(
        b'{"v":1,"session":"s","seq":1,"ts":0,"type":"message.delta","message":"m","part":0,"text":"x"}'
    )
    assert record.event == ev.MessageDelta(message="m", part=0, kind="text", text="x", turn=None, job=None)


def test_unknown_types_are_kept_and_re_encoded_unchanged() -> None:
    raw = b'{"v":1,"session":"s_1","seq":5,"ts":10,"type":"canvas.updated","canvas":"k_1","ops":[{"x":1}],"turn":null}'
    record = Record.from_json(raw)
    assert record.type == "canvas.updated"
    assert record.event == UnknownEvent("canvas.updated", {"canvas": "k_1", "ops": [{"x": 1}], "turn": None})
    assert (record.session, record.seq, record.ts) == ("s_1", 5, 10)
    assert record.raw == raw
    assert record.to_json() == raw.decode()
    # Built again from the opaque event, it encodes to the same record.
    rebuilt = Record("s_1", 5, 10, record.event)
    assert rebuilt.to_dict() == json.loads(raw)
    assert Record.from_json(rebuilt.raw) == record


def test_an_unknown_type_cannot_be_published() -> None:
    with pytest.raises(InvalidEvent, match=r"unknown event type 'canvas\.updated'"):
        to_event(UnknownEvent("canvas.updated", {}))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"type": "nope"}, "unknown event type 'nope'"),
        ({"text": "no type"}, "unknown event type None"),
        ({"type": ["status"]}, "unknown event type"),
        ("message.delta", "a typed event or a dict, not str"),
        ({"type": "message.delta", "part": 0, "text": "x"}, "invalid message.delta event: .*`message`"),
        (
            {"type": "message.delta", "message": "m", "part": -1, "text": "x"},
            r"invalid message.delta event: .*\$\.part",
        ),
        ({"type": "message.delta", "message": "", "part": 0, "text": "x"}, r"\$\.message"),
        ({"type": "message.delta", "message": "m", "part": 0, "text": 5}, r"Expected `str`, got `int` - at `\$\.text`"),
        ({"type": "message.delta", "message": "m", "part": 0, "kind": "image", "text": ""}, r"\$\.kind"),
        ({"type": "approval.resolved", "approval": "a", "decision": "maybe"}, r"invalid approval.resolved .*decision"),
        ({"type": "message.started", "message": "m", "role": "robot"}, r"\$\.role"),
        ({"type": "job.progress", "job": "j", "done": -1}, r"\$\.done"),
        ({"type": "message.completed", "message": "m", "role": "user", "parts": [{"kind": "video"}]}, r"parts\[0\]"),
    ],
)
def test_invalid_events_say_what_is_wrong(value: Any, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        to_event(value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not a record: "),
        (b"[1, 2]", "not a record: Expected `object`, got `array`"),
        (b'{"v":1,"session":"s","ts":0,"type":"status","text":"x"}', "not a record: .*`seq`"),
        (b'{"v":1,"session":"s","seq":0,"ts":0,"type":"status","text":"x"}', r"not a record: .*\$\.seq"),
        (b'{"v":1,"session":"","seq":1,"ts":0,"type":"status","text":"x"}', r"not a record: .*\$\.session"),
        (b'{"v":1,"session":"s","seq":1,"ts":0,"text":"x"}', "not a record: .*`type`"),
    ],
)
def test_invalid_records_say_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        Record.from_json(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"v":1,"session":"s","seq":3,"ts":0,"type":"status"}', "invalid status record s#3: .*`text`"),
        (b'{"v":1,"session":"s","seq":3,"ts":0,"type":"tool.result","message":"m","part":0}', "s#3: .*`call`"),
        (
            b'{"v":1,"session":"s","seq":3,"ts":0,"type":"tool.started","message":"m","part":0,"call":"'
            + b"c" * 201
            + b'","name":"t"}',
            r"s#3: .*length <= 200.*\$\.call",
        ),
        (b'{"v":1,"session":"s","seq":3,"ts":0,"type":"message.delta","message":"m","part":10001,"text":"x"}', "part"),
    ],
)
def test_a_stored_record_whose_fields_do_not_validate_is_kept_opaque(raw: bytes, message: str) -> None:
    # One bad record must not make a session unreadable: its envelope is fine, so it is
    # kept whole (type and bytes), says what is wrong, and the fold skips it.
    record = Record.from_json(raw)
    assert isinstance(record.event, OpaqueEvent) and isinstance(record.event, UnknownEvent)
    assert re.search(message, record.event.error)
    assert record.raw == raw and record.seq == 3 and record.type == json.loads(raw)["type"]
    assert record.event.data == {
        k: v for k, v in json.loads(raw).items() if k not in ("v", "session", "seq", "ts", "type")
    }
    after = Record("s", 4, 1, ev.Status(text="after"))
    state = fold_records(
        [Record("s", 1, 0, ev.TurnStarted(turn="t1")), Record("s", 2, 0, ev.Status(text="x")), record, after]
    )
    assert state.seq == 4 and list(state.turns) == ["t1"] and not state.messages
    with pytest.raises(InvalidEvent, match="unknown event type"):
        to_event(record.event)  # passed through, never republished


class Name(str):
    """A str subclass: msgspec cannot encode it."""


BAD_TYPED = [
    (ev.ToolStarted(message="m", part=0, call="c" * 201, name="t"), r"length <= 200.*\$\.call"),
    (ev.MessageDelta(message="", part=0, text="x"), r"length >= 1.*\$\.message"),
    (ev.MessageDelta(message="m", part=10_001, text="x"), r"<= 10000.*\$\.part"),
    (ev.MessageDelta(message="m", part=-1, text="x"), r">= 0.*\$\.part"),
    (ev.MessageDelta(message="m", part=True, text="x"), r"Expected `int`, got `bool`.*\$\.part"),
    (ev.MessageDelta(message="m", part=0, text=5), r"Expected `str`, got `int`.*\$\.text"),  # type: ignore[arg-type]
    (ev.MessageDelta(message="m", part=0, kind="image", text="x"), r"\$\.kind"),  # type: ignore[arg-type]
    (ev.Status(job="j" * 201, text="x"), r"\$\.job"),
    (ev.JobProgress(job="j", done=1, total=-1), r"\$\.total"),
    (ev.TurnCompleted(turn="t", usage=ev.Usage(input_tokens=-5)), r"\$\.usage\.input_tokens"),
    (ev.MessageCompleted(message="m", role="user", parts=[ev.TextPart(text=3)]), r"\$\.parts\[0\]\.text"),  # type: ignore[arg-type]
    (ev.MessageDelta(message=Name("m"), part=0, text="x"), "Encoding objects of type Name is unsupported"),
]


@pytest.mark.parametrize(("event", "message"), BAD_TYPED, ids=[type(e).__name__ for e, _ in BAD_TYPED])
def test_typed_events_are_validated_like_dicts(event: ev.Event, message: str) -> None:
    # msgspec checks nothing when a model is built: to_event must, or the log stores a
    # record that no reader can decode.
    with pytest.raises(InvalidEvent, match=message):
        to_event(event)
    if not isinstance(getattr(event, "message", ""), Name):  # a dict cannot even hold a Name
        with pytest.raises(InvalidEvent):
            to_event(msgspec.to_builtins(event))  # the same verdict as for the dict form


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.type)
def test_valid_typed_events_pass_as_they_are(event: ev.Event) -> None:
    assert to_event(event) is event
    assert CHECKS[type(event)](event), "the fast check must pass every valid sample"


class Index(enum.IntEnum):
    FIRST = 0


def test_a_fast_check_miss_falls_back_to_the_full_check() -> None:
    event = ev.MessageDelta(message="m", part=Index.FIRST, text="x")
    assert not CHECKS[ev.MessageDelta](event)  # not sure: not exactly an int
    assert to_event(event) is event  # but it encodes as 0 and decodes back, so it is valid


def test_invalid_event_is_a_value_error() -> None:
    assert issubclass(InvalidEvent, ValueError)


def test_event_owner_is_the_owner_field_of_models_that_declare_one() -> None:
    owned = {name for name, cls in EVENT_TYPES.items() if "owner" in cls.__struct_fields__}
    assert owned == {"turn.started", "job.started"}
    owners = {e.type: event_owner(e) for e in ALL_EVENTS}
    assert owners.pop("turn.started") == "worker-1" and owners.pop("job.started") == "worker-2"
    assert set(owners.values()) == {None}
    assert event_owner(ev.TurnStarted(turn="t_1")) is None  # declared, not set
    assert event_owner(UnknownEvent("turn.started", {"turn": "t_1", "owner": "w"})) is None
    assert event_owner(OpaqueEvent("job.started", {"owner": "w"}, "bad")) is None


def test_events_are_frozen() -> None:
    event = ev.Status(text="x")
    with pytest.raises(AttributeError):
        event.text = "y"  # type: ignore[misc]


def test_scope_ids_have_the_design_names() -> None:
    # Every field that names a scope uses exactly the DESIGN.md names, and each event
    # has the scope ids it needs.
    needs = {
        "turn.": {"turn"},
        "job.": {"job"},
        "message.": {"turn", "job", "message"},
        "message.delta": {"part"},
        "tool.": {"turn", "job", "message", "part", "call"},
        "approval.": {"turn", "job", "approval"},
        "status": {"turn", "job"},
        "error": {"turn", "job"},
    }
    for name, cls in EVENT_TYPES.items():
        fields = set(cls.__struct_fields__)
        for prefix, wanted in needs.items():
            if name.startswith(prefix):
                assert wanted <= fields, (name, wanted - fields)
        assert not {f for f in fields if f.endswith("_id") or f in {"tool_call", "call_id", "turn_id"}}, name


def test_approval_resolved_says_the_decision_and_who() -> None:
    hints = typing.get_type_hints(ev.ApprovalResolved, include_extras=True)
    decision = typing.get_args(hints["decision"])[0]
    assert set(typing.get_args(decision)) == {"approved", "denied", "expired"}
    record = _record(ev.ApprovalResolved(approval="a_1", decision="expired"))
    assert record.to_dict()["by"] is None
    assert record.to_dict()["decision"] == "expired"


def test_record_equality_covers_the_envelope() -> None:
    event = ev.Status(text="x")
    record = Record("s", 1, 5, event)
    assert record == Record("s", 1, 5, ev.Status(text="x"))
    assert record != Record("s", 2, 5, event)
    assert record != Record("t", 1, 5, event)
    assert record != Record("s", 1, 6, event)
    assert record != Record("s", 1, 5, ev.Status(text="y"))
    assert hash(record) == hash(Record("s", 1, 5, event))
    assert record != "s#1"
    assert "seq=1" in repr(record) and "'status'" in repr(record)


def test_an_integral_float_counts_as_an_integer_as_in_json_schema() -> None:
    # JSON has one number type: the schema's "integer" accepts 7811.0, so the server must too.
    event = to_event({"type": "job.progress", "job": "j1", "done": 7811.0, "total": 1e4})
    assert event == ev.JobProgress(job="j1", done=7811, total=10000) and type(event.done) is int  # type: ignore[union-attr]
    with pytest.raises(InvalidEvent, match="Expected `int`, got `float`"):
        to_event({"type": "job.progress", "job": "j1", "done": 7811.5})
    with pytest.raises(InvalidEvent):
        to_event({"type": "job.progress", "job": "j1", "done": "7811"})  # a string is not a number


def test_only_the_models_integer_fields_turn_integral_floats_into_ints() -> None:
    event = to_event({"type": "tool.result", "message": "m", "call": "c", "part": 0.0, "result": {"x": 1.0}})
    assert event.part == 0 and event.result == {"x": 1.0}  # type: ignore[union-attr]
    assert type(event.result["x"]) is float  # type: ignore[union-attr]
    usage = to_event({"type": "turn.completed", "turn": "t", "usage": {"input_tokens": 3.0, "output_tokens": 4}})
    assert usage.usage == ev.Usage(input_tokens=3, output_tokens=4)  # type: ignore[union-attr]


def test_repr_shows_the_events_fields() -> None:
    record = _record(ev.MessageDelta(message="m_1", part=0, text="Hel"))
    assert repr(record) == (
        f"Record(session='s_1', seq=7, ts={TS}, type='message.delta', message='m_1', part=0, kind='text', text='Hel')"
    )
    assert "turn=" not in repr(record)  # fields that are None are left out
