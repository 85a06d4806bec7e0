"""Turns end to end through the channel: every scripted command, cancel, policies, after, close."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from runtime_util import assistant_texts, ends, records_until, run_turn, turn_records, wait_for_record
from sessionwire import Conflict, Hub, NotFound, Record, SessionNotFound, TurnRejected, fold_records
from sessionwire.channel import Session
from sessionwire.events import TERMINAL_TYPES, Status
from sessionwire.runtime import Runtime, ScriptedProvider
from sessionwire.runtime.providers.scripted import numbered
from sessionwire.state import ReasoningPart, TextPart, ToolPart


def check_shape(records: list[Record], turn: str) -> None:
    """turn.started first with the owner, the user's message, one terminal last, finals after their deltas."""
    mine = turn_records(records, turn)
    assert mine[0].type == "turn.started"
    assert [r.type for r in mine[1:3]] == ["message.started", "message.completed"]
    assert mine[1].event.role == "user"
    terminals = [r for r in mine if r.type in TERMINAL_TYPES]
    assert terminals == [mine[-1]]
    last_of: dict[str, str] = {}
    for r in mine:
        message = getattr(r.event, "message", None)
        if message is not None:
            last_of[message] = r.type
    assert set(last_of.values()) == {"message.completed"}


async def test_plain_text_is_echoed_with_the_users_text(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
        d, records = await run_turn(runtime, session, "hello wired world")
        check_shape(records, d.turn or "")
        assert records[0].event.owner == runtime.owner
        assert records[-1].type == "turn.completed"
        assert records[-1].event.model == "scripted"
        assert records[-1].event.usage.output_tokens > 0
        state = await session.state()
        assert state.turns[d.turn or ""].status == "completed"
        user = state.messages[state.turns[d.turn or ""].messages[0]]
        assert user.role == "user" and user.parts == [TextPart(text="hello wired world")]
        assert assistant_texts(state, d.turn or "") == ["You said: hello wired world"]


@pytest.mark.parametrize("coalesce_ms", [0.0, 5.0, 30.0])
async def test_long_streams_exactly_n_numbered_words(hub: Hub, session: Session, coalesce_ms: float) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0), coalesce_ms=coalesce_ms) as runtime:
        d, records = await run_turn(runtime, session, "/long 700")
        check_shape(records, d.turn or "")
        expected = "".join(numbered(700))
        deltas = [r for r in records if r.type == "message.delta"]
        assert "".join(r.event.text for r in deltas) == expected
        if coalesce_ms == 0:
            assert len(deltas) == 700  # one per word when nothing is coalesced
        else:
            assert len(deltas) < 700
        assert assistant_texts(await session.state(), d.turn or "") == [expected]
        assert fold_records(records).messages == (await session.state()).messages


async def test_think_streams_reasoning_before_the_answer(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
        d, records = await run_turn(runtime, session, "/think tides")
        check_shape(records, d.turn or "")
        deltas = [r.event for r in records if r.type == "message.delta"]
        assert deltas[0].kind == "reasoning" and deltas[-1].kind == "text"
        state = await session.state()
        answer = state.messages[state.turns[d.turn or ""].messages[1]]
        assert isinstance(answer.parts[0], ReasoningPart) and "tides" in answer.parts[0].text
        assert isinstance(answer.parts[1], TextPart) and "tides" in answer.parts[1].text


async def test_tool_streams_arguments_then_result_then_answers(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0), coalesce_ms=0) as runtime:
        d, records = await run_turn(runtime, session, '/tool add {"a": 2, "b": 40}')
        check_shape(records, d.turn or "")
        tool = [r for r in records if r.type.startswith("tool.")]
        types = [r.type for r in tool]
        assert types[0] == "tool.started" and types[-2:] == ["tool.called", "tool.result"]
        assert set(types[1:-2]) == {"tool.args.delta"} and len(types) > 4  # arguments streamed in chunks
        assert "".join(r.event.text for r in tool[1:-2]) == '{"a": 2, "b": 40}'
        assert tool[-1].event.result == 42 and tool[-1].event.status == "completed"
        state = await session.state()
        call_message, answer = (state.messages[m] for m in state.turns[d.turn or ""].messages[1:])
        part = call_message.parts[0]
        assert isinstance(part, ToolPart)
        assert (part.name, part.status, part.result, json.loads(part.args)) == (
            "add",
            "completed",
            42,
            {"a": 2, "b": 40},
        )
        assert answer.parts == [TextPart(text="add returned 42")]


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ('/tool nope {"x": 1}', "no tool named 'nope'"),
        ("/tool add {not json", "not valid JSON"),
        ('/tool add {"a": 1}', "missing argument(s) b"),
        ('/tool add {"a": "1", "b": 2}', "'a' must be of type number"),
    ],
)
async def test_a_bad_tool_call_is_an_error_result_not_a_failed_turn(
    hub: Hub, session: Session, command: str, error: str
) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
        d, records = await run_turn(runtime, session, command)
        assert records[-1].type == "turn.completed"
        result = next(r.event for r in records if r.type == "tool.result")
        assert result.status == "failed" and error in (result.error or "")
        state = await session.state()
        part = state.messages[state.turns[d.turn or ""].messages[1]].parts[0]
        assert isinstance(part, ToolPart) and part.status == "failed"
        assert error in assistant_texts(state, d.turn or "")[-1]


async def test_fail_ends_the_turn_failed_with_its_partial_message_completed(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
        d, records = await run_turn(runtime, session, "/fail")
        check_shape(records, d.turn or "")
        assert records[-1].type == "turn.failed"
        assert records[-1].event.code == "scripted_failure" and "/fail" in records[-1].event.error
        assert records[-2].type == "message.completed"
        state = await session.state()
        assert state.turns[d.turn or ""].status == "failed"
        assert assistant_texts(state, d.turn or "") == ["This turn is about to fail."]


@pytest.mark.parametrize("command", ["/long 100001", "/long many", "/long", "/job 100001 big"])
async def test_n_above_the_cap_or_not_a_number_fails_clearly(hub: Hub, session: Session, command: str) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
        _d, records = await run_turn(runtime, session, command)
        assert records[-1].type == "turn.failed"
        assert "from 1 to 100000" in records[-1].event.error
        assert (await session.state()).jobs == {}


async def test_the_cap_is_configurable(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0, max_words=10)) as runtime:
        _, ok = await run_turn(runtime, session, "/long 10")
        _, bad = await run_turn(runtime, session, "/long 11")
        assert ok[-1].type == "turn.completed"
        assert bad[-1].type == "turn.failed" and "from 1 to 10," in bad[-1].event.error


async def test_dispatch_to_a_session_without_records_raises(hub: Hub) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
        with pytest.raises(SessionNotFound):
            await runtime.dispatch("nobody", "hi")
        with pytest.raises(SessionNotFound):
            await runtime.start_job("nobody", "t", "p")
        raw = await hub.session("raw")
        await raw.publish(Status(text="records, but never created"))
        with pytest.raises(SessionNotFound):
            await runtime.dispatch("raw", "hi")


async def test_dispatch_outside_the_context_manager_is_refused(hub: Hub, session: Session) -> None:
    runtime = Runtime(hub, ScriptedProvider(delay=0))
    with pytest.raises(Exception, match="not running"):
        await runtime.dispatch(session.id, "hi")
    with pytest.raises(ValueError, match="policy"):
        Runtime(hub, ScriptedProvider(), policy="drop")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- cancel


async def test_cancel_mid_stream_completes_the_partial_message_then_cancels(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0.002), coalesce_ms=5) as runtime:
        d = await runtime.dispatch(session.id, "/long 100000")
        turn = d.turn or ""
        await wait_for_record(session, d.after, lambda r: r.type == "message.delta")
        await runtime.cancel_turn(session.id, turn)
        state = await session.state()
        assert state.turns[turn].status == "cancelled"
        assert state.turns[turn].reason == "cancelled on request"
        records = await records_until(session, d.after, ends("turn", turn))
        check_shape(records, turn)
        assert [r.type for r in records[-2:]] == ["message.completed", "turn.cancelled"]
        text = assistant_texts(state, turn)[0]
        words = text.split(" ")
        assert 0 < len(words) < 100000 and words == [f"w{i}" for i in range(1, len(words) + 1)]
        deltas = "".join(r.event.text for r in records if r.type == "message.delta")
        assert deltas == text  # the final carries exactly what was streamed
        with pytest.raises(Conflict, match="already ended"):
            await runtime.cancel_turn(session.id, turn)
        with pytest.raises(NotFound):
            await runtime.cancel_turn(session.id, "t_unknown")


async def test_cancel_a_queued_turn_before_it_started(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0.002)) as runtime:
        first = await runtime.dispatch(session.id, "/long 100000")
        second = await runtime.dispatch(session.id, "queued one")
        await runtime.cancel_turn(session.id, second.turn or "")
        state = await session.state()
        assert state.turns[second.turn or ""].status == "cancelled"
        assert state.turns[first.turn or ""].status == "running"
        user = state.messages[state.turns[second.turn or ""].messages[0]]
        assert user.parts == [TextPart(text="queued one")]
        await runtime.cancel_turn(session.id, first.turn or "")


# --------------------------------------------------------------------------- policies


async def test_queue_policy_runs_turns_one_after_the_other(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0.001), policy="queue") as runtime:
        first = await runtime.dispatch(session.id, "/long 50")
        second = await runtime.dispatch(session.id, "second")
        third = await runtime.dispatch(session.id, "third")
        assert first.after <= second.after <= third.after
        records = await records_until(session, first.after, ends("turn", third.turn or ""))
        order = [(r.type, r.event.turn) for r in records if r.type.startswith("turn.")]
        assert order == [
            ("turn.started", first.turn),
            ("turn.completed", first.turn),
            ("turn.started", second.turn),
            ("turn.completed", second.turn),
            ("turn.started", third.turn),
            ("turn.completed", third.turn),
        ]
        # A subscriber from a queued turn's `after` sees the whole of that turn.
        queued = await records_until(session, third.after, ends("turn", third.turn or ""))
        check_shape(queued, third.turn or "")
        assert assistant_texts(await session.state(), third.turn or "") == ["You said: third"]


async def test_reject_policy_refuses_a_second_message_while_a_turn_runs(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0.002), policy="reject") as runtime:
        first = await runtime.dispatch(session.id, "/long 100000")
        with pytest.raises(TurnRejected, match=first.turn or ""):
            await runtime.dispatch(session.id, "too soon")
        await runtime.cancel_turn(session.id, first.turn or "")
        _, records = await run_turn(runtime, session, "now it is fine")
        assert records[-1].type == "turn.completed"
        state = await session.state()
        assert len(state.turns) == 2  # the rejected message left no record


async def test_interrupt_policy_interrupts_the_running_turn_then_starts(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0.002), policy="interrupt") as runtime:
        first = await runtime.dispatch(session.id, "/long 100000")
        await wait_for_record(session, first.after, lambda r: r.type == "message.delta")
        second = await runtime.dispatch(session.id, "change of plan")
        records = await records_until(session, first.after, ends("turn", second.turn or ""))
        types = [(r.type, r.event.turn) for r in records if r.type.startswith("turn.")]
        assert types == [
            ("turn.started", first.turn),
            ("turn.interrupted", first.turn),
            ("turn.started", second.turn),
            ("turn.completed", second.turn),
        ]
        state = await session.state()
        assert state.turns[first.turn or ""].status == "interrupted"
        assert state.turns[first.turn or ""].reason == "interrupted by a new message"
        assert assistant_texts(state, first.turn or "")[0].startswith("w1 w2")
        assert assistant_texts(state, second.turn or "") == ["You said: change of plan"]


# --------------------------------------------------------------------------- lifecycle


async def test_closing_the_runtime_interrupts_what_it_runs(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0.002)) as runtime:
        d = await runtime.dispatch(session.id, "/long 100000")
        job = await runtime.start_job(session.id, "forever", "/long 100000")
        await wait_for_record(session, d.after, lambda r: r.type == "message.delta" and r.event.job is not None)
    state = await session.state()
    assert state.turns[d.turn or ""].status == "interrupted"
    assert state.turns[d.turn or ""].reason == "the runtime was closed"
    assert state.jobs[job.job or ""].status == "interrupted"
    assert runtime.statistics() == {"turns": 0, "jobs": 0, "approvals": 0}
    with pytest.raises(Exception, match="not running"):
        await runtime.dispatch(session.id, "after close")


async def test_a_turn_and_its_job_on_every_backend_survive_a_reopen(log_url: str) -> None:
    if log_url.startswith("memory"):
        pytest.skip("a memory log does not outlive its hub")
    async with Hub.open(log_url) as hub:
        session, _ = await hub.create_session("s_backend")
        async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
            d, records = await run_turn(runtime, session, "/job 60 on disk")
            job = next(r.event.job for r in records if r.type == "job.started")
            await records_until(session, d.after, ends("job", job))
            _, long = await run_turn(runtime, session, "/long 300")
            assert long[-1].type == "turn.completed"
        live = await session.state()
    async with Hub.open(log_url) as again:
        stored = await (await again.session("s_backend")).state()
    assert stored.to_dict() == live.to_dict()
    assert stored.jobs[job].status == "completed"
    assert "".join(
        p.text for m in stored.jobs[job].messages for p in stored.messages[m].parts if isinstance(p, TextPart)
    ) == "".join(numbered(60))


async def test_a_dispatch_that_fails_after_its_turn_entered_the_line_takes_it_out(
    hub: Hub, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    membership = hub.store.membership
    entered, go = asyncio.Event(), asyncio.Event()
    enter = membership.enter

    async def slow_enter(*args: Any, **kwargs: Any) -> Any:
        ahead = await enter(*args, **kwargs)
        entered.set()
        await go.wait()
        return ahead

    monkeypatch.setattr(membership, "enter", slow_enter)
    async with Runtime(hub, ScriptedProvider(delay=0.002)) as runtime:
        dispatch = asyncio.create_task(runtime.dispatch(session.id, "hello"))
        await entered.wait()
        await runtime.close_session(session.id)  # the session is being deleted meanwhile
        go.set()
        with pytest.raises(SessionNotFound):
            await dispatch
        # Its entry went with it: nothing holds up the session's line.
        assert await membership.line(session.id) == []
