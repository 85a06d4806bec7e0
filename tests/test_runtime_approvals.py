"""Approvals: approve, deny, double resolve, expiry with nobody calling anything, cancel while waiting."""

from __future__ import annotations

import asyncio
import time

import pytest

from runtime_util import assistant_texts, ends, records_until
from sessionwire import Conflict, Hub, NotFound
from sessionwire.channel import Session
from sessionwire.runtime import Runtime, ScriptedProvider
from sessionwire.state import SessionState, ToolPart


async def requested(runtime: Runtime, session: Session, text: str) -> tuple[str, str, int]:
    """Dispatch ``text`` and wait for its ``approval.requested``; return (turn, approval, after)."""
    d = await runtime.dispatch(session.id, text)
    record = (await records_until(session, d.after, lambda r: r.type == "approval.requested"))[-1]
    return d.turn or "", record.event.approval, d.after


def tool_part(state: SessionState, turn: str) -> ToolPart:
    message = state.messages[state.turns[turn].messages[1]]
    part = message.parts[0]
    assert isinstance(part, ToolPart)
    return part


async def test_approve_runs_the_tool_and_the_answer_says_so(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0), approval_timeout=60) as runtime:
        before = time.time_ns() // 1_000_000
        turn, approval, after = await requested(runtime, session, "/approve empty the trash")
        state = await session.state()
        pending = state.approvals[approval]  # a client joining now sees it pending
        assert (pending.status, pending.action, pending.turn) == ("pending", "empty the trash", turn)
        assert pending.call == tool_part(state, turn).call and tool_part(state, turn).status == "called"
        assert before + 59_000 <= (pending.expires_at or 0) <= time.time_ns() // 1_000_000 + 61_000
        await runtime.resolve_approval(session.id, approval, "approve", by="alice")
        records = await records_until(session, after, ends("turn", turn))
        types = [r.type for r in records]
        assert types.index("approval.requested") < types.index("approval.resolved") < types.index("tool.result")
        state = await session.state()
        assert state.approvals[approval].status == "approved" and state.approvals[approval].by == "alice"
        part = tool_part(state, turn)
        assert (part.status, part.result) == ("completed", "done: empty the trash")
        assert assistant_texts(state, turn)[-1] == "Approved, so I did it: done: empty the trash"
        seq = state.seq
        with pytest.raises(Conflict, match="already resolved"):
            await runtime.resolve_approval(session.id, approval, "deny", by="bob")
        after_second = await session.state()
        assert after_second.seq == seq and after_second.approvals[approval].status == "approved"


async def test_deny_does_not_run_the_tool(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
        turn, approval, after = await requested(runtime, session, "/approve wipe the disk")
        await runtime.resolve_approval(session.id, approval, "deny", by="carol")
        records = await records_until(session, after, ends("turn", turn))
        assert records[-1].type == "turn.completed"
        state = await session.state()
        assert state.approvals[approval].status == "denied"
        part = tool_part(state, turn)
        assert part.status == "denied" and part.result is None and "denied" in (part.error or "")
        assert assistant_texts(state, turn)[-1] == "Denied, so I did not wipe the disk."


async def test_concurrent_double_resolve_lets_exactly_one_win(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
        turn, approval, after = await requested(runtime, session, "/approve ship it")
        results = await asyncio.gather(
            runtime.resolve_approval(session.id, approval, "approve", by="a"),
            runtime.resolve_approval(session.id, approval, "deny", by="b"),
            return_exceptions=True,
        )
        assert results[0] is None and isinstance(results[1], Conflict)
        records = await records_until(session, after, ends("turn", turn))
        resolved = [r for r in records if r.type == "approval.resolved"]
        assert len(resolved) == 1 and resolved[0].event.decision == "approved"


async def test_unknown_approval_and_bad_decision(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
        with pytest.raises(NotFound):
            await runtime.resolve_approval(session.id, "a_nope", "approve")
        turn, approval, after = await requested(runtime, session, "/approve x")
        with pytest.raises(ValueError, match="approve"):
            await runtime.resolve_approval(session.id, approval, "maybe")  # type: ignore[arg-type]
        await runtime.resolve_approval(session.id, approval, "approve")
        await records_until(session, after, ends("turn", turn))


async def test_expiry_with_nobody_calling_anything(hub: Hub, session: Session) -> None:
    timeout = 0.2
    loop = asyncio.get_running_loop()
    async with Runtime(hub, ScriptedProvider(delay=0), approval_timeout=timeout) as runtime:
        began, began_ms = loop.time(), time.time_ns() // 1_000_000
        d = await runtime.dispatch(session.id, "/approve reboot the server")
        records = await records_until(session, d.after, ends("turn", d.turn or ""))
        waited = loop.time() - began
        resolved = next(r for r in records if r.type == "approval.resolved")
        requested = next(r for r in records if r.type == "approval.requested")
        assert resolved.event.decision == "expired" and resolved.event.by is None  # the runtime wrote it
        # Its expiry time is `timeout` after the request, on the clock that stamps the records
        # (no tolerance: the same clock, read in order)...
        assert began_ms + 200 <= (requested.event.expires_at or 0) <= requested.ts + 200
        # ...and it did not expire early: on the event loop's clock, the one the runtime waits on.
        assert waited >= timeout
        assert records[-1].type == "turn.completed"
        state = await session.state()
        assert state.approvals[resolved.event.approval].status == "expired"
        part = tool_part(state, d.turn or "")
        assert part.status == "denied" and part.result is None  # the tool did not run
        assert assistant_texts(state, d.turn or "")[-1] == "Nobody answered in time, so I did not reboot the server."
        assert runtime.statistics()["approvals"] == 0
        with pytest.raises(Conflict, match="already resolved: expired"):
            await runtime.resolve_approval(session.id, resolved.event.approval, "approve")


async def test_cancelling_a_turn_that_waits_for_approval_expires_it(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
        turn, approval, _after = await requested(runtime, session, "/approve something")
        await runtime.cancel_turn(session.id, turn)
        state = await session.state()
        assert state.turns[turn].status == "cancelled"
        assert state.approvals[approval].status == "expired"
        part = tool_part(state, turn)
        assert part.status == "failed"  # the call never finished
        assert runtime.statistics()["approvals"] == 0
