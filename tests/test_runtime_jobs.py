"""Background jobs: they outlive the request and the turn, stream scoped to their id, progress throttled."""

from __future__ import annotations

import time

import pytest

from runtime_util import ends, records_until, run_turn
from sessionwire import Conflict, Hub, NotFound, Record
from sessionwire.channel import Session
from sessionwire.runtime import Runtime, ScriptedProvider
from sessionwire.runtime.providers.scripted import numbered
from sessionwire.state import SessionState, TextPart


def job_text(state: SessionState, job: str) -> str:
    return "".join(
        p.text for mid in state.jobs[job].messages for p in state.messages[mid].parts if isinstance(p, TextPart)
    )


async def test_a_job_outlives_the_request_and_the_turn_that_started_it(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0.003), coalesce_ms=30) as runtime:
        began = time.monotonic()
        d = await runtime.dispatch(session.id, "/job 200 report")  # the "request" returns here
        turn = d.turn or ""
        turn_records = await records_until(session, d.after, ends("turn", turn))
        assert turn_records[-1].type == "turn.completed"
        started = next(r.event for r in turn_records if r.type == "job.started")
        job = started.job
        assert started.turn == turn and started.owner == runtime.owner and started.title == "report"
        state = await session.state()
        assert state.jobs[job].status == "running"  # the turn is over, the job is not
        assert "Started job" in "".join(
            p.text for p in state.messages[state.turns[turn].messages[-1]].parts if isinstance(p, TextPart)
        )
        # A subscriber that joins now, from the turn's end, still gets every job token and its terminal.
        records = await records_until(session, turn_records[-1].seq, ends("job", job))
        elapsed = time.monotonic() - began
    assert records[-1].type == "job.completed" and records[-1].event.summary == "report: 200 words"
    # The job's first words may come before the turn's end (a subscriber makes the writer's wait short).
    mine = [r for r in [*turn_records, *records] if getattr(r.event, "job", None) == job]
    deltas = [r.event for r in mine if r.type == "message.delta"]
    assert "".join(e.text for e in deltas) == "".join(numbered(200))
    assert all(e.turn is None for e in deltas)  # scoped by the job, not by the turn that is over
    progress = [r.event for r in mine if r.type == "job.progress"]
    assert progress[-1].done == 200 and progress[-1].total == 200
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert 1 <= len(progress) <= elapsed / 0.030 + 3  # throttled: about one per window, never one per token
    final = await session.state()
    assert final.jobs[job].status == "completed" and final.jobs[job].progress is not None
    assert job_text(final, job) == "".join(numbered(200))
    message = final.messages[final.jobs[job].messages[0]]
    assert message.job == job and message.turn is None and message.status == "completed"


async def test_start_job_directly_returns_at_once(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
        d = await runtime.start_job(session.id, "digest", "summarize the week")
        assert d.turn is None and d.job is not None and d.to_dict() == {"after": d.after, "job": d.job}
        records = await records_until(session, d.after, ends("job", d.job))
        assert records[0].type == "job.started" and records[0].event.turn is None
        assert records[-1].type == "job.completed"
        assert job_text(await session.state(), d.job) == "Working on: summarize the week"


async def test_several_jobs_run_at_once_in_one_session(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0.0005), coalesce_ms=2) as runtime:
        jobs = [await runtime.start_job(session.id, f"job {i}", f"/long {100 + i}") for i in range(3)]
        assert runtime.statistics()["jobs"] == 3
        after = jobs[0].after
        for d in jobs:
            await records_until(session, after, ends("job", d.job or ""))
        state = await session.state()
        for i, d in enumerate(jobs):
            assert state.jobs[d.job or ""].status == "completed"
            assert job_text(state, d.job or "") == "".join(numbered(100 + i))


async def test_cancel_job_mid_stream(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0.002), coalesce_ms=5) as runtime:
        d = await runtime.start_job(session.id, "long", "/long 100000")
        job = d.job or ""
        await records_until(session, d.after, lambda r: r.type == "message.delta")
        await runtime.cancel_job(session.id, job)
        records = await records_until(session, d.after, ends("job", job))
        assert [r.type for r in records[-2:]] == ["message.completed", "job.cancelled"]
        state = await session.state()
        assert state.jobs[job].status == "cancelled"
        text = job_text(state, job)
        assert text and text == "".join(r.event.text for r in records if r.type == "message.delta")
        with pytest.raises(Conflict):
            await runtime.cancel_job(session.id, job)
        with pytest.raises(NotFound):
            await runtime.cancel_job(session.id, "j_nope")


async def test_a_job_that_fails_ends_failed(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
        d = await runtime.start_job(session.id, "bad", "/long 0")
        records = await records_until(session, d.after, ends("job", d.job or ""))
        assert records[-1].type == "job.failed" and "from 1 to" in records[-1].event.error
        assert (await session.state()).jobs[d.job or ""].status == "failed"


async def test_jobs_keep_going_while_later_turns_run(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0.001)) as runtime:
        d, _ = await run_turn(runtime, session, "/job 150 background")
        _, later = await run_turn(runtime, session, "meanwhile")
        assert later[-1].type == "turn.completed"
        job = next(iter((await session.state()).jobs))
        records = await records_until(session, d.after, ends("job", job))
        assert records[-1].type == "job.completed"
        assert job_text(await session.state(), job) == "".join(numbered(150))


async def test_progress_is_throttled_to_one_per_window(hub: Hub, session: Session) -> None:
    async with Runtime(hub, ScriptedProvider(delay=0), coalesce_ms=20) as runtime:
        d = await runtime.start_job(session.id, "quick", "/long 5000")
        records: list[Record] = await records_until(session, d.after, ends("job", d.job or ""))
        progress = [r for r in records if r.type == "job.progress"]
        assert progress[-1].event.done == 5000
        assert len(progress) < 50
