"""The fold: its rules, its purity, and that the hub's in-place step always equals it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionwire.events import EVENT_TYPES, MessageDelta, Record, UnknownEvent, to_event
from sessionwire.state import SessionState, TextPart, ToolPart, apply, fold, fold_records

SESSION = "s_1"


def rec(seq: int, type: str, **fields: Any) -> Record:
    """A record of ``session`` s_1 at ``seq``, its ts derived from the seq."""
    event = UnknownEvent(type, fields) if type not in EVENT_TYPES else to_event({"type": type, **fields})
    return Record(SESSION, seq, 1000 + seq, event)


def text(part: str) -> dict[str, str]:
    return {"kind": "text", "text": part}


def test_an_empty_state() -> None:
    state = fold(None, rec(1, "turn.started", turn="t_1"))
    assert (state.seq, state.session, state.updated_at, state.created_at) == (1, SESSION, 1001, None)
    assert state.turns["t_1"].status == "running"
    assert fold_records([]) == SessionState()


def test_records_at_or_below_the_state_seq_are_ignored() -> None:
    state = fold_records([rec(1, "message.delta", message="m", part=0, text="a"), rec(2, "status", text="x")])
    for old in (
        rec(2, "message.delta", message="m", part=0, text="again"),
        rec(1, "session.created", title="late"),
        rec(2, "turn.failed", turn="t", error="no"),
    ):
        assert fold(state, old) == state
        assert apply(state, old) is state
    assert state.messages["m"].parts[0].text == "a"  # type: ignore[union-attr]
    assert state.seq == 2 and state.title is None and not state.turns


def test_fold_is_pure() -> None:
    before = fold_records(
        [
            rec(1, "turn.started", turn="t_1"),
            rec(2, "message.delta", turn="t_1", message="m", part=0, text="a"),
            rec(3, "approval.requested", approval="a_1", action="x"),
            rec(4, "job.started", job="j_1", title="J"),
        ]
    )
    snapshot = before.to_dict()
    after = fold(before, rec(5, "message.delta", turn="t_1", message="m", part=0, text="b"))
    after = fold(after, rec(6, "turn.completed", turn="t_1"))
    after = fold(after, rec(7, "approval.resolved", approval="a_1", decision="denied"))
    after = fold(after, rec(8, "job.progress", job="j_1", done=1))
    assert before.to_dict() == snapshot
    assert after.messages["m"].parts[0].text == "ab"  # type: ignore[union-attr]
    assert after.messages["m"].status == "completed"
    assert fold_records([rec(9, "status", text="s")], before).seq == 9
    assert before.to_dict() == snapshot


def test_fold_never_reads_a_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    def clock() -> float:
        raise AssertionError("the fold read a clock")

    for name in ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter"):
        monkeypatch.setattr(time, name, clock)
    state = fold_records(
        [
            rec(1, "session.created", title="t"),
            rec(2, "approval.requested", approval="a", action="x", expires_at=1),
            rec(3, "turn.started", turn="t_1"),
            rec(4, "message.delta", turn="t_1", message="m", part=0, text="a"),
        ]
    )
    assert state.approvals["a"].status == "pending"  # an expiry is a record, never the clock


def test_a_record_of_another_session_is_refused() -> None:
    state = fold(None, rec(1, "status", text="x"))
    other = Record("s_2", 2, 0, to_event({"type": "status", "text": "y"}))
    with pytest.raises(ValueError, match="s_2#2 does not belong to session s_1"):
        fold(state, other)


def test_unknown_types_only_advance_the_seq() -> None:
    state = fold_records([rec(1, "status", text="x"), rec(2, "canvas.updated", canvas="k", turn="t_1")])
    assert state.seq == 2 and state.updated_at == 1002
    assert state.to_dict() == {**fold_records([rec(1, "status", text="x")]).to_dict(), "seq": 2, "updated_at": 1002}


def test_message_completed_is_authoritative() -> None:
    state = fold_records(
        [
            rec(1, "message.delta", message="m", part=0, text="Helo"),
            rec(2, "message.delta", message="m", part=1, kind="reasoning", text="hmm"),
            rec(3, "message.completed", message="m", role="assistant", parts=[text("Hello")]),
            rec(4, "message.delta", message="m", part=0, text=" late flush"),
            rec(5, "message.delta", message="m", part=3, text="stray"),
            rec(6, "tool.started", message="m", part=1, call="c", name="x"),
            rec(7, "tool.args.delta", message="m", part=0, call="c", text="{}"),
        ]
    )
    message = state.messages["m"]
    assert message.status == "completed"
    assert message.parts == [TextPart(text="Hello")]


def test_message_completed_also_replaces_a_closed_message() -> None:
    state = fold_records(
        [
            rec(1, "message.delta", turn="t", message="m", part=0, text="Hel"),
            rec(2, "turn.cancelled", turn="t"),
            rec(3, "message.completed", turn="t", message="m", role="assistant", parts=[text("Hel")]),
            rec(4, "message.completed", turn="t", message="m", role="system", parts=[text("Hello")]),
        ]
    )
    assert state.messages["m"].status == "completed"
    assert state.messages["m"].role == "system"
    assert state.messages["m"].parts[0].text == "Hello"  # type: ignore[union-attr]
    assert state.turns["t"].status == "cancelled"


def test_first_approval_resolution_wins() -> None:
    state = fold_records(
        [
            rec(1, "approval.requested", approval="a", action="rm", call="c"),
            rec(2, "approval.resolved", approval="a", decision="expired"),
            rec(3, "approval.resolved", approval="a", decision="approved", by="ana"),
            rec(4, "approval.requested", approval="a", action="rm -rf", call="c"),
        ]
    )
    approval = state.approvals["a"]
    assert (approval.status, approval.by, approval.action) == ("expired", None, "rm -rf")


def test_a_resolution_without_a_request_still_counts() -> None:
    state = fold_records(
        [
            rec(1, "approval.resolved", approval="a", decision="denied", by="bob", turn="t"),
            rec(2, "approval.requested", approval="a", action="rm", turn="t"),
        ]
    )
    approval = state.approvals["a"]
    assert (approval.status, approval.by, approval.action, approval.turn) == ("denied", "bob", "rm", "t")


@pytest.mark.parametrize("end", ["completed", "failed", "cancelled", "interrupted"])
@pytest.mark.parametrize("scope", ["turn", "job"])
def test_a_terminal_closes_its_streaming_messages(scope: str, end: str) -> None:
    other = "job" if scope == "turn" else "turn"
    extra = {"error": "boom"} if end == "failed" else {}
    state = fold_records(
        [
            rec(1, "message.delta", **{scope: "x"}, message="open", part=0, text="a"),
            rec(2, "message.completed", **{scope: "x"}, message="done", role="assistant", parts=[]),
            rec(3, "message.delta", **{other: "y"}, message="elsewhere", part=0, text="b"),
            rec(4, "status", **{scope: "x"}, text="working"),
            rec(5, f"{scope}.{end}", **{scope: "x"}, **extra),
            rec(6, "message.delta", **{scope: "x"}, message="open", part=0, text="late"),
            rec(7, "message.delta", **{scope: "x"}, message="after", part=0, text="ghost"),
        ]
    )
    assert state.messages["open"].status == end
    assert state.messages["open"].parts[0].text == "a"  # type: ignore[union-attr]
    assert state.messages["done"].status == "completed"
    assert state.messages["elsewhere"].status == "streaming"
    assert state.messages["after"].status == end and state.messages["after"].parts == []
    assert state.status is None
    owner = state.turns["x"] if scope == "turn" else state.jobs["x"]
    assert owner.status == end
    assert owner.messages == ["open", "done", "after"]


def test_the_first_terminal_wins() -> None:
    state = fold_records(
        [
            rec(1, "job.started", job="j", title="J"),
            rec(2, "job.cancelled", job="j", reason="stop"),
            rec(3, "job.completed", job="j", summary="done anyway"),
            rec(4, "job.started", job="j", title="again"),
            rec(5, "job.progress", job="j", done=3),
            rec(6, "turn.interrupted", turn="t"),
            rec(7, "turn.completed", turn="t", model="m"),
            rec(8, "turn.started", turn="t", owner="w"),
        ]
    )
    job, turn = state.jobs["j"], state.turns["t"]
    assert (job.status, job.reason, job.summary, job.title, job.progress) == ("cancelled", "stop", None, "J", None)
    assert (turn.status, turn.model, turn.owner) == ("interrupted", None, None)


def test_a_status_line_is_cleared_only_by_the_end_of_its_own_scope() -> None:
    base = [rec(1, "turn.started", turn="t"), rec(2, "job.started", turn="t", job="j", title="J")]
    job_line = fold_records([*base, rec(3, "status", turn="t", job="j", text="s"), rec(4, "turn.completed", turn="t")])
    assert job_line.status is not None and job_line.status.text == "s"
    cleared = fold_records([*base, rec(3, "status", turn="t", job="j", text="s"), rec(4, "job.completed", job="j")])
    assert cleared.status is None
    session_line = fold_records([*base, rec(3, "status", text="s"), rec(4, "turn.completed", turn="t")])
    assert session_line.status is not None


def test_tool_results_land_after_the_message_is_final() -> None:
    state = fold_records(
        [
            rec(1, "tool.started", message="m", part=1, call="c", name="search"),
            rec(2, "tool.args.delta", message="m", part=1, call="c", text='{"q":'),
            rec(3, "tool.args.delta", message="m", part=1, call="c", text='"x"}'),
            rec(4, "message.completed", message="m", role="assistant", parts=[
                text("Looking"),
                {"kind": "tool", "call": "c", "name": "search", "args": '{"q":"x"}', "status": "called"},
            ]),
            rec(5, "tool.args.delta", message="m", part=1, call="c", text="junk"),
            rec(6, "tool.result", message="m", part=0, call="c", result={"n": 1}),
            rec(7, "tool.result", message="m", part=2, call="unknown", result=2),
        ]
    )  # fmt: skip
    parts = state.messages["m"].parts
    assert len(parts) == 2
    assert parts[1] == ToolPart(call="c", name="search", args='{"q":"x"}', status="completed", result={"n": 1})


def test_streamed_tool_arguments() -> None:
    state = fold_records(
        [
            rec(1, "tool.started", message="m", part=0, call="c", name="search"),
            rec(2, "tool.args.delta", message="m", part=0, call="c", text='{"q":'),
            rec(3, "tool.args.delta", message="m", part=0, call="c", text='"x"}'),
        ]
    )
    tool = state.messages["m"].parts[0]
    assert (tool.name, tool.args, tool.status) == ("search", '{"q":"x"}', "streaming")  # type: ignore[union-attr]
    called = fold(state, rec(4, "tool.called", message="m", part=0, call="c", name="search", args='{"q":"y"}'))
    tool = called.messages["m"].parts[0]
    assert (tool.args, tool.status) == ('{"q":"y"}', "called")  # type: ignore[union-attr]
    replaced = fold(state, rec(4, "tool.started", message="m", part=0, call="d", name="other"))
    tool = replaced.messages["m"].parts[0]
    assert (tool.call, tool.name, tool.args) == ("d", "other", "")  # type: ignore[union-attr]


# --------------------------------------------------------------------------- properties

TURNS = ["t_1", "t_2"]
JOBS = ["j_1", "j_2"]
MESSAGES = ["m_1", "m_2", "m_3", "m_4"]
CALLS = ["c_1", "c_2", "c_3"]
APPROVALS = ["a_1", "a_2"]

opt_turn = st.sampled_from([None, *TURNS])
opt_job = st.sampled_from([None, None, *JOBS])
words = st.sampled_from(["", "a", "bc", " déf", "👋", '{"k":', "1}"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | words,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(words, inner, max_size=3),
    max_leaves=6,
)
part_dicts = st.one_of(
    st.builds(lambda t: {"kind": "text", "text": t}, words),
    st.builds(lambda t: {"kind": "reasoning", "text": t}, words),
    st.builds(
        lambda c, a, s, r: {"kind": "tool", "call": c, "name": "f", "args": a, "status": s, "result": r},
        st.sampled_from(CALLS),
        words,
        st.sampled_from(["streaming", "called", "completed", "failed", "denied"]),
        json_values,
    ),
)


def _scoped(**fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"turn": opt_turn, "job": opt_job, **fields})


def _of(type: str, strategy: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return strategy.map(lambda fields: {"type": type, **fields})


message_ids = st.sampled_from(MESSAGES)
parts = st.integers(0, 3)
event_dicts = st.one_of(
    _of("session.created", st.fixed_dictionaries({"title": st.none() | words})),
    _of("turn.started", st.fixed_dictionaries({"turn": st.sampled_from(TURNS), "owner": st.none() | words})),
    _of("turn.completed", st.fixed_dictionaries({"turn": st.sampled_from(TURNS)})),
    _of("turn.failed", st.fixed_dictionaries({"turn": st.sampled_from(TURNS), "error": words})),
    _of("turn.cancelled", st.fixed_dictionaries({"turn": st.sampled_from(TURNS)})),
    _of("turn.interrupted", st.fixed_dictionaries({"turn": st.sampled_from(TURNS)})),
    _of("message.started", _scoped(message=message_ids, role=st.sampled_from(["user", "assistant"]))),
    _of(
        "message.delta",
        _scoped(message=message_ids, part=parts, kind=st.sampled_from(["text", "reasoning"]), text=words),
    ),
    _of("message.delta", _scoped(message=message_ids, part=parts, text=words)),
    _of(
        "message.completed",
        _scoped(message=message_ids, role=st.just("assistant"), parts=st.lists(part_dicts, max_size=3)),
    ),
    _of("tool.started", _scoped(message=message_ids, part=parts, call=st.sampled_from(CALLS), name=words)),
    _of("tool.args.delta", _scoped(message=message_ids, part=parts, call=st.sampled_from(CALLS), text=words)),
    _of("tool.called", _scoped(message=message_ids, part=parts, call=st.sampled_from(CALLS), name=words, args=words)),
    _of(
        "tool.result",
        _scoped(
            message=message_ids,
            part=parts,
            call=st.sampled_from(CALLS),
            result=json_values,
            status=st.sampled_from(["completed", "failed", "denied"]),
        ),
    ),
    _of("job.started", st.fixed_dictionaries({"job": st.sampled_from(JOBS), "title": words, "turn": opt_turn})),
    _of(
        "job.progress",
        st.fixed_dictionaries(
            {"job": st.sampled_from(JOBS), "done": st.integers(0, 9), "total": st.none() | st.integers(0, 9)}
        ),
    ),
    _of("job.completed", st.fixed_dictionaries({"job": st.sampled_from(JOBS)})),
    _of("job.failed", st.fixed_dictionaries({"job": st.sampled_from(JOBS), "error": words})),
    _of("job.cancelled", st.fixed_dictionaries({"job": st.sampled_from(JOBS)})),
    _of("job.interrupted", st.fixed_dictionaries({"job": st.sampled_from(JOBS)})),
    _of(
        "approval.requested",
        _scoped(approval=st.sampled_from(APPROVALS), action=words, call=st.none() | st.sampled_from(CALLS)),
    ),
    _of(
        "approval.resolved",
        _scoped(
            approval=st.sampled_from(APPROVALS),
            decision=st.sampled_from(["approved", "denied", "expired"]),
            by=st.none() | words,
        ),
    ),
    _of("status", _scoped(text=words)),
    _of("error", _scoped(error=words)),
    _of("canvas.updated", st.fixed_dictionaries({"canvas": words, "turn": opt_turn})),
)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Record], list[Record]]:
    """(the log's records, what a consumer got: the same with duplicates and replays mixed in)."""
    events = draw(st.lists(event_dicts, min_size=1, max_size=40))
    records = [rec(seq, e["type"], **{k: v for k, v in e.items() if k != "type"}) for seq, e in enumerate(events, 1)]
    delivered: list[Record] = []
    for i, record in enumerate(records):
        delivered.append(record)
        if draw(st.integers(0, 4)) == 0:  # a replay of an earlier stretch
            start = draw(st.integers(0, i))
            delivered.extend(records[start : i + 1])
        if draw(st.integers(0, 9)) == 0:  # a different body under an old seq: identity is the seq
            old = records[draw(st.integers(0, i))]
            delivered.append(Record(SESSION, old.seq, old.ts, to_event({"type": "status", "text": "impostor"})))
    return records, delivered


@settings(max_examples=150, deadline=None)
@given(deliveries())
def test_in_place_apply_always_equals_the_pure_fold(case: tuple[list[Record], list[Record]]) -> None:
    records, delivered = case
    live = SessionState()
    pure: SessionState | None = None
    history: list[tuple[SessionState, dict[str, Any]]] = []
    for record in delivered:
        apply(live, record)
        pure = fold(pure, record)
        history.append((pure, pure.to_dict()))
        assert live.to_dict() == pure.to_dict()
        assert live == pure
    # Purity: no later step changed an earlier state.
    for state, seen in history:
        assert state.to_dict() == seen
    # Duplicates and replays are harmless: the consumer's state is the log's.
    assert fold_records(delivered) == fold_records(records) == live


@settings(max_examples=100, deadline=None)
@given(deliveries(), st.data())
def test_a_snapshot_then_the_tail_equals_the_whole(
    case: tuple[list[Record], list[Record]], data: st.DataObject
) -> None:
    records, _ = case
    cut = data.draw(st.integers(0, len(records)))
    snapshot = fold_records(records[:cut])
    restored = SessionState.from_json(snapshot.to_json())
    assert fold_records(records[cut:], restored) == fold_records(records)


@settings(max_examples=100, deadline=None)
@given(deliveries())
def test_state_survives_json_and_dict_round_trips(case: tuple[list[Record], list[Record]]) -> None:
    state = fold_records(case[0])
    assert SessionState.from_json(state.to_json()) == state
    assert SessionState.from_dict(state.to_dict()) == state
    assert SessionState.from_dict(state.to_dict()).to_dict() == state.to_dict()
    assert SessionState.from_json(state.to_json()).to_json() == state.to_json()


def test_only_their_own_records_and_messages_create_turns_and_jobs() -> None:
    state = fold_records(
        [
            rec(1, "status", turn="t_status", job="j_status", text="s"),
            rec(2, "error", turn="t_error", error="e"),
            rec(3, "approval.requested", turn="t_approval", job="j_approval", approval="a", action="x"),
            rec(4, "job.started", turn="t_parent", job="j_1", title="J"),
            rec(5, "message.delta", turn="t_msg", job="j_msg", message="m", part=0, text="x"),
        ]
    )
    assert list(state.jobs) == ["j_1", "j_msg"]
    assert state.turns == {}
    assert state.jobs["j_msg"].messages == ["m"]


@given(st.lists(st.text(max_size=6), min_size=1, max_size=40))
@settings(max_examples=150, deadline=None)
def test_deltas_fold_into_their_text_and_leave_every_record_unchanged(pieces: list[str]) -> None:
    # The fold grows a part's text in place (it would copy the whole text per delta otherwise):
    # mixed character widths must come out right, and no record's own text may change.
    records = [rec(1, "turn.started", turn="t1"), rec(2, "message.started", message="m1", turn="t1", role="assistant")]
    records += [rec(3 + i, "message.delta", message="m1", part=0, text=p, turn="t1") for i, p in enumerate(pieces)]
    records += [
        rec(3 + len(pieces) + i, "tool.args.delta", call="c1", message="m1", part=1, text=p, turn="t1")
        for i, p in enumerate(pieces)
    ]
    before = [r.raw for r in records]
    state = fold_records(records)
    parts = state.messages["m1"].parts
    assert isinstance(parts[0], TextPart) and parts[0].text == "".join(pieces)
    assert isinstance(parts[1], ToolPart) and parts[1].args == "".join(pieces)
    assert [Record.from_json(raw).to_dict() for raw in before] == [r.to_dict() for r in records]
    assert all(r.event.text == p for r, p in zip(records[2:], pieces))  # type: ignore[union-attr]


def test_a_delta_that_cannot_fold_leaves_the_text_whole() -> None:
    # A record built by hand, unchecked (publish refuses it): the fold raises, the text stays.
    state = fold_records([rec(1, "message.delta", message="m1", part=0, text="Hello", turn="t1")])
    bad = Record(SESSION, 2, 1002, MessageDelta(message="m1", part=0, text=None))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        apply(state, bad)
    part = state.messages["m1"].parts[0]
    assert isinstance(part, TextPart) and part.text == "Hello"
