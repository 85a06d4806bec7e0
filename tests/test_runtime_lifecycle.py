"""Races at the edges of work: dispatch against close, cancel against completion, deleting a busy session."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence
from pathlib import Path

import pytest

from runtime_util import ends, records_until, wait_for_record
from sessionwire import Conflict, Hub, LogClosed, Record, SessionNotFound
from sessionwire.backends import Fence
from sessionwire.backends.memory import MemoryLog
from sessionwire.channel import Session
from sessionwire.errors import LogBehind, LogUnavailable
from sessionwire.events import Event, JobCompleted, TurnCompleted, TurnInterrupted
from sessionwire.runtime import Cluster, Runtime, RuntimeClosed, ScriptedProvider


class HeldLog(MemoryLog):
    """A memory log that holds back the append carrying an event of type ``hold`` until released."""

    def __init__(self, hold: type[Event]) -> None:
        super().__init__()
        self.hold = hold
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def append(
        self, session: str, events: Sequence[Event], fence: Fence | None = None, external: bool = False
    ) -> list[Record]:
        if any(isinstance(e, self.hold) for e in events):
            self.reached.set()
            await self.release.wait()
        return await super().append(session, events, fence, external)

    def submit(
        self, session: str, events: Sequence[Event], fence: Fence | None = None, known: int = 0, external: bool = False
    ) -> asyncio.Future[list[Record]]:
        return asyncio.ensure_future(
            self.append(session, events, fence, external)
        )  # a log that waits, as a network one does


# --------------------------------------------------------------------------- dispatch and close


async def test_a_runtime_not_started_or_closed_raises_runtime_closed(hub: Hub, session: Session) -> None:
    runtime = Runtime(hub, ScriptedProvider(delay=0))
    with pytest.raises(RuntimeClosed, match=f"runtime {runtime.owner} is not running"):
        await runtime.dispatch(session.id, "hi")
    async with runtime:
        pass
    with pytest.raises(RuntimeClosed, match="is closed"):
        await runtime.start_job(session.id, "t", "p")
    assert issubclass(RuntimeClosed, LogClosed)  # handlers of LogClosed (the server's 503) still map it
    assert RuntimeClosed.code == "runtime_closed"


@pytest.mark.parametrize("call", ["dispatch", "start_job"])
async def test_work_admitted_while_the_runtime_closes_is_refused(call: str, tmp_path: Path) -> None:
    async with Hub.open(f"sqlite:///{tmp_path / 'dc.db'}") as hub:
        await hub.create_session("s1")
        runtime = Runtime(hub, ScriptedProvider(delay=0.01), coalesce_ms=0)
        await runtime.start()
        first = await runtime.dispatch("s1", "warm")  # s1 is known now: only a cheap check remains
        await records_until(await hub.session("s1"), first.after, ends("turn", first.turn or ""))
        await hub.evict("s1")  # the next hub.session() awaits a load from the SQLite file
        if call == "dispatch":
            admitted = asyncio.create_task(runtime.dispatch("s1", "/long 50"))
        else:
            admitted = asyncio.create_task(runtime.start_job("s1", "late", "/long 50"))
        await asyncio.sleep(0)  # it now waits inside hub.session()
        await runtime.aclose()
        with pytest.raises(RuntimeClosed, match="is closed"):
            await admitted
        assert runtime.statistics() == {"turns": 0, "jobs": 0, "approvals": 0}
        state = await (await hub.session("s1")).state()
        assert list(state.turns) == [first.turn] and not state.jobs


# --------------------------------------------------------------------------- cancel against completion


async def test_cancel_turn_racing_its_completion_is_a_conflict() -> None:
    log = HeldLog(TurnCompleted)
    async with Hub.open(log) as hub:
        session, _ = await hub.create_session("s1")
        async with Runtime(hub, ScriptedProvider(delay=0), coalesce_ms=0) as runtime:
            d = await runtime.dispatch(session.id, "hello")
            async with asyncio.timeout(10):
                await log.reached.wait()  # the turn is writing turn.completed: it can't be cancelled any more
            cancel = asyncio.create_task(runtime.cancel_turn(session.id, d.turn or ""))
            await asyncio.sleep(0)
            log.release.set()
            with pytest.raises(Conflict, match=f"turn {d.turn!r} of session 's1' has already ended: completed"):
                await cancel
            state = await session.state()
            assert state.turns[d.turn or ""].status == "completed"


async def test_cancel_job_racing_its_completion_is_a_conflict() -> None:
    log = HeldLog(JobCompleted)
    async with Hub.open(log) as hub:
        session, _ = await hub.create_session("s1")
        async with Runtime(hub, ScriptedProvider(delay=0), coalesce_ms=0) as runtime:
            d = await runtime.start_job(session.id, "quick", "/long 3")
            async with asyncio.timeout(10):
                await log.reached.wait()
            cancel = asyncio.create_task(runtime.cancel_job(session.id, d.job or ""))
            await asyncio.sleep(0)
            log.release.set()
            with pytest.raises(Conflict, match=f"job {d.job!r} of session 's1' has already ended: completed"):
                await cancel
            assert (await session.state()).jobs[d.job or ""].status == "completed"


async def test_cancel_turn_while_the_runtime_closes_reports_the_interruption(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0.002), coalesce_ms=5) as runtime:
        d = await runtime.dispatch(session.id, "/long 100000")
        await wait_for_record(session, d.after, lambda r: r.type == "message.delta")
        closing = asyncio.create_task(runtime.aclose())
        await asyncio.sleep(0)  # aclose asked the turn to end "interrupted" first
        with pytest.raises(Conflict, match="already ended: interrupted"):
            await runtime.cancel_turn(session.id, d.turn or "")
        await closing
    assert (await session.state()).turns[d.turn or ""].status == "interrupted"


# --------------------------------------------------------------------------- closing a session


async def test_close_session_ends_its_work_and_refuses_new_work(hub: Hub, session: Session) -> None:
    other, _ = await hub.create_session("s2")
    async with Runtime(hub, ScriptedProvider(delay=0.002), coalesce_ms=5, approval_timeout=3600) as runtime:
        running = await runtime.dispatch(session.id, "/long 100000")
        queued = await runtime.dispatch(session.id, "after that")
        job = await runtime.start_job(session.id, "forever", "/long 100000")
        elsewhere = await runtime.dispatch(other.id, "/long 100000")
        await wait_for_record(session, running.after, lambda r: r.type == "message.delta" and r.event.job is not None)
        waiting = await runtime.dispatch(other.id, "/approve x")  # queued in s2: untouched

        await runtime.close_session(session.id)
        state = await session.state()
        assert state.turns[running.turn or ""].status == "cancelled"
        assert state.turns[queued.turn or ""].status == "cancelled"
        assert state.jobs[job.job or ""].status == "cancelled"
        assert state.turns[running.turn or ""].reason == "the session is being deleted"
        assert not any(runtime.runs(session.id, w) for w in (running.turn or "", queued.turn or "", job.job or ""))
        with pytest.raises(SessionNotFound):
            await runtime.dispatch(session.id, "one more")
        with pytest.raises(SessionNotFound):
            await runtime.start_job(session.id, "t", "p")
        assert runtime.runs(other.id, elsewhere.turn or "") and runtime.runs(other.id, waiting.turn or "")

        await hub.delete_session(session.id)
        with pytest.raises(SessionNotFound):
            await runtime.dispatch(session.id, "gone")
        assert session.id not in [m.id for m in await hub.log.sessions()]
        assert await hub.log.bounds(session.id) == (0, 0)
        recreated, _ = await hub.create_session(session.id)  # the id may be used again
        d = await runtime.dispatch(recreated.id, "hello again")
        records = await records_until(recreated, d.after, ends("turn", d.turn or ""))
        assert records[-1].type == "turn.completed"
        await runtime.cancel_turn(other.id, elsewhere.turn or "")


async def test_close_session_expires_the_approvals_its_work_waits_on(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0), approval_timeout=3600) as runtime:
        d = await runtime.dispatch(session.id, "/approve launch")
        requested = await wait_for_record(session, d.after, lambda r: r.type == "approval.requested")
        await runtime.close_session(session.id)
        state = await session.state()
        assert state.approvals[requested.event.approval].status == "expired"
        assert state.turns[d.turn or ""].status == "cancelled"
        assert runtime.statistics() == {"turns": 0, "jobs": 0, "approvals": 0}


async def test_work_ended_elsewhere_meanwhile_gets_no_second_terminal(hub: Hub, session: Session) -> None:
    # A survivor wrote `turn.interrupted` while this process's loop stalled past its lease: when the
    # turn comes back to end, it must not write a second terminal.
    async with Runtime(hub, ScriptedProvider(delay=0.002), coalesce_ms=5) as runtime:
        d = await runtime.dispatch(session.id, "/long 60")
        turn = d.turn or ""
        await wait_for_record(session, d.after, lambda r: r.type == "message.delta")
        await session.publish(TurnInterrupted(turn=turn, reason="its owner's lease expired"))
        async with asyncio.timeout(10):
            while runtime.runs(session.id, turn):  # noqa: ASYNC110 - no event says "the work let go"
                await asyncio.sleep(0.01)
        records = await records_until(session, d.after, ends("turn", turn))
        log = await hub.log.read(session.id, d.after)
        terminals = [r for r in log if r.type.startswith("turn.") and r.type != "turn.started"]
        assert [r.type for r in terminals] == ["turn.interrupted"] and records[-1].type == "turn.interrupted"
        assert (await session.state()).turns[turn].status == "interrupted"


# --------------------------------------------------------------------------- a log that goes away


class OutageLog(MemoryLog):
    """A memory log that refuses every append (LogUnavailable, as after the retry window) while ``down``."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.down = False
        self.refused = 0
        self.error = error or LogUnavailable("the store is down (a test)")

    def submit(
        self, session: str, events: Sequence[Event], fence: Fence | None = None, known: int = 0, external: bool = False
    ) -> asyncio.Future[list[Record]]:
        future: asyncio.Future[list[Record]] = asyncio.get_running_loop().create_future()
        if self.down:
            self.refused += 1
            self.unwritten.add(session)  # as a shared log does: the cluster writes the end it could not
            future.set_exception(self.error)
        else:
            future.set_result(self._append(session, events, fence, external))
        return future


async def outage_turn(log: OutageLog, down_for: float) -> tuple[Record, list[Record]]:
    """A long turn, in a cluster of one, during which ``log`` refuses appends for ``down_for`` seconds."""
    async with Hub.open(log) as hub:
        session, _ = await hub.create_session("s1")
        async with (
            Cluster.open(hub) as cluster,
            Runtime(
                hub, ScriptedProvider(delay=0.002), coalesce_ms=10, owner=cluster.owner, ownership=cluster
            ) as local,
            cluster.route(local) as runtime,
        ):
            sent = await runtime.dispatch(session.id, "/long 2000")
            await wait_for_record(session, sent.after, lambda r: r.type == "message.delta")
            log.down = True  # longer than a coalescing window: timers' flushes fail
            await asyncio.sleep(down_for)
            log.down = False
            end = await wait_for_record(session, sent.after, ends("turn", sent.turn or ""))
        records = await log.read("s1")
        gc.collect()  # a task whose exception nobody took would say so now
    return end, records


async def test_an_outage_mid_turn_never_leaves_a_hole_in_the_text(caplog: pytest.LogCaptureFixture) -> None:
    log = OutageLog()
    end, records = await outage_turn(log, 0.1)
    assert log.refused > 0
    # The turn ends as failed, saying why, instead of completing over what was never written ...
    assert end.type == "turn.failed" and end.event.code == "log_unavailable"  # type: ignore[union-attr]
    # ... and the text its subscribers saw has no hole: w1, w2, ... in order, none skipped.
    words = "".join(r.event.text for r in records if r.type == "message.delta").split()  # type: ignore[union-attr]
    assert words == [f"w{i}" for i in range(1, len(words) + 1)] and len(words) < 2000
    assert "never retrieved" not in caplog.text


async def test_an_append_refused_for_any_reason_leaves_no_hole_either() -> None:
    # Not only an outage: whatever makes the log refuse a timer's flush (LogBehind whose repair
    # failed, say), no later delta may land before the refused ones.
    log = OutageLog(error=LogBehind("s1", 3, 9))
    end, records = await outage_turn(log, 0.05)
    # Its own end was refused too: the cluster wrote it, once the log took appends again.
    assert end.type == "turn.failed" and end.event.code in ("log_behind", "log_unavailable")  # type: ignore[union-attr]
    words = "".join(r.event.text for r in records if r.type == "message.delta").split()  # type: ignore[union-attr]
    assert words == [f"w{i}" for i in range(1, len(words) + 1)] and len(words) < 2000
