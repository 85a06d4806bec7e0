"""Crash recovery: work a dead process left open gets its terminal before anything else is accepted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import RedisServer
from runtime_util import ends, records_until, run_turn
from sessionwire import Hub
from sessionwire.backends.redis import RedisLog
from sessionwire.events import ApprovalRequested, MessageDelta, MessageStarted, TurnCompleted, TurnStarted
from sessionwire.runtime import Cluster, Runtime, ScriptedProvider
from sessionwire.runtime.admitted import AdmittedMarks, marks_of
from sessionwire.state import TextPart

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from sessionwire import Hub, Record
    from sessionwire.runtime import Cluster, Runtime, ScriptedProvider

    async def wait_for(session, enough):
        async with session.subscribe(0) as sub:
            seen = []
            async for item in sub:
                if isinstance(item, Record):
                    seen.append(item)
                    if enough(seen):
                        return

    async def main(url):
        async with Hub.open(url) as hub:
            s1, _ = await hub.create_session("s1")
            s2, _ = await hub.create_session("s2")
            provider = ScriptedProvider(delay=0.002)
            async with Runtime(hub, provider, coalesce_ms=5, approval_timeout=3600) as runtime:
                turn = await runtime.dispatch("s1", "/long 100000")
                queued = await runtime.dispatch("s1", "then this")  # admitted behind it, never started
                job = await runtime.start_job("s1", "crunch", "/long 100000")
                waiting = await runtime.dispatch("s2", "/approve launch the rocket")

                def deltas(seen, **scope):
                    return sum(1 for r in seen if r.type == "message.delta" and all(
                        getattr(r.event, k) == v for k, v in scope.items()))

                await wait_for(s1, lambda seen: deltas(seen, turn=turn.turn) >= 3 and deltas(seen, job=job.job) >= 3)
                await wait_for(s2, lambda seen: any(r.type == "approval.requested" for r in seen))
                info = {
                    "turn": turn.turn, "queued": queued.turn, "job": job.job, "waiting": waiting.turn,
                    "owner": runtime.owner,
                }
                print(json.dumps(info), flush=True)
                await asyncio.sleep(3600)

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_a_sigkilled_process_leaves_nothing_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            assert proc.stderr is not None
            raise AssertionError((await proc.stderr.read()).decode())
        info = json.loads(line)
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    async with Hub.open(url) as hub:
        s1, s2 = await hub.session("s1"), await hub.session("s2")
        before = await s1.state()
        assert before.turns[info["turn"]].status == "running" and before.jobs[info["job"]].status == "running"
        assert before.turns[info["turn"]].owner == info["owner"]
        assert info["queued"] not in before.turns  # a queued turn writes nothing before it starts...
        assert marks_of(await hub.log.get_meta("s1")) == {info["queued"]: info["owner"]}  # ...but it is marked
        pending = next(iter((await s2.state()).approvals.values()))
        assert pending.status == "pending"

        async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
            state = await s1.state()
            turn, job = state.turns[info["turn"]], state.jobs[info["job"]]
            assert turn.status == "interrupted" and job.status == "interrupted"
            assert turn.reason and "stopped" in turn.reason
            queued = state.turns[info["queued"]]  # the id dispatch gave out ends too
            assert (queued.status, queued.messages) == ("interrupted", [])
            assert queued.reason and "stopped" in queued.reason
            assert marks_of(await hub.log.get_meta("s1")) == {}
            for message_id in [turn.messages[-1], *job.messages]:
                message = state.messages[message_id]
                assert message.status == "interrupted"
                text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
                words = text.split(" ")
                assert len(words) >= 3 and words == [f"w{i}" for i in range(1, len(words) + 1)]  # partial text kept
            other = await s2.state()
            assert other.approvals[pending.id].status == "expired"
            assert other.turns[info["waiting"]].status == "interrupted"
            assert runtime.recovered.turns == {"s1": [info["turn"], info["queued"]], "s2": [info["waiting"]]}
            assert runtime.recovered.jobs == {"s1": [info["job"]]} and runtime.recovered.approvals == {
                "s2": [pending.id]
            }
            closed_at = state.seq
            d, records = await run_turn(runtime, s1, "are you back?")
            assert d.after >= closed_at and records[-1].type == "turn.completed"
        async with Runtime(hub, ScriptedProvider(delay=0)) as again:
            assert again.recovered.total == 0  # nothing left open: a clean close interrupts nothing twice


class AliveFor:
    """An Ownership that knows a set of live owners, as a lease store would."""

    def __init__(self, *owners: str) -> None:
        self.owners = set(owners)
        self.asked: list[str] = []

    async def is_owner_alive(self, owner: str) -> bool:
        self.asked.append(owner)
        return owner in self.owners

    def fence(self) -> None:
        return None


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
async def test_work_of_a_live_owner_is_left_alone(url: str, tmp_path: Path) -> None:
    async with Hub.open(url if url == "memory://" else f"sqlite:///{tmp_path / 'l.db'}") as hub:
        session, _ = await hub.create_session("s")
        await session.publish_many(
            [
                TurnStarted(turn="t_other", owner="rt_other"),
                MessageStarted(message="m_1", role="assistant", turn="t_other"),
                MessageDelta(message="m_1", part=0, text="half", turn="t_other"),
                ApprovalRequested(approval="a_1", action="x", turn="t_other"),
                TurnStarted(turn="t_orphan"),  # no owner at all: nobody can be running it
            ]
        )
        ownership = AliveFor("rt_other")
        async with Runtime(hub, ScriptedProvider(delay=0), ownership=ownership) as runtime:
            state = await session.state()
            assert state.turns["t_other"].status == "running" and state.approvals["a_1"].status == "pending"
            assert state.turns["t_orphan"].status == "interrupted"
            assert ownership.asked == ["rt_other"]
            assert runtime.recovered.turns == {"s": ["t_orphan"]}
        ownership.owners.clear()  # the other runtime's lease ran out
        async with Runtime(hub, ScriptedProvider(delay=0), ownership=ownership):
            state = await session.state()
            assert state.turns["t_other"].status == "interrupted"
            assert state.approvals["a_1"].status == "expired"
            assert state.messages["m_1"].status == "interrupted"
            assert state.messages["m_1"].parts == [TextPart(text="half")]


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
async def test_an_approval_left_pending_by_ended_work_expires_and_recovery_goes_on(url: str, tmp_path: Path) -> None:
    async with Hub.open(url if url == "memory://" else f"sqlite:///{tmp_path / 'p.db'}") as hub:
        first, _ = await hub.create_session("a")
        second, _ = await hub.create_session("b")
        # An external producer's turn ended with its approval still pending (the log allows it)...
        await first.publish_many(
            [
                TurnStarted(turn="t_ext"),
                ApprovalRequested(approval="a_ext", action="x", turn="t_ext"),
                TurnCompleted(turn="t_ext"),
            ],
            external=True,
        )
        # ...and a dead runtime left a turn running in the next session.
        await second.publish(TurnStarted(turn="t_dead", owner="rt_dead"))
        async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
            assert (await first.state()).approvals["a_ext"].status == "expired"
            assert (await second.state()).turns["t_dead"].status == "interrupted"
            assert runtime.recovered.approvals == {"a": ["a_ext"]}


async def test_recovery_comes_before_the_first_new_record(tmp_path: Path) -> None:
    async with Hub.open("memory://") as hub:
        session, _ = await hub.create_session("s")
        await session.publish(TurnStarted(turn="t_dead", owner="rt_dead"))
        async with Runtime(hub, ScriptedProvider(delay=0)) as runtime:
            d = await runtime.dispatch("s", "hi")
            records = await records_until(session, 0, ends("turn", d.turn or ""))
            types = [r.type for r in records]
            assert types.index("turn.interrupted") < types.index("turn.started", 2)


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
async def test_a_live_owners_queued_turn_is_left_alone_and_unmarked_when_it_ends(url: str, tmp_path: Path) -> None:
    async with Hub.open(url if url == "memory://" else f"sqlite:///{tmp_path / 'q.db'}") as hub:
        session, token = await hub.create_session("s", title="queue")
        async with Runtime(hub, ScriptedProvider(delay=0.002), owner="rt_a", coalesce_ms=5) as a:
            running = await a.dispatch("s", "/long 100000")
            assert marks_of(await hub.log.get_meta("s")) == {}  # a turn that starts at once is not marked
            queued = await a.dispatch("s", "then this")
            dropped = await a.dispatch("s", "and this")
            turns = {queued.turn: "rt_a", dropped.turn: "rt_a"}
            assert marks_of(await hub.log.get_meta("s")) == turns
            ownership = AliveFor("rt_a")
            async with Runtime(hub, ScriptedProvider(delay=0), owner="rt_b", ownership=ownership) as b:
                assert b.recovered.total == 0  # rt_a is alive: its queue is its own
            assert "rt_a" in ownership.asked
            assert marks_of(await hub.log.get_meta("s")) == turns
            await a.cancel_turn("s", dropped.turn or "")
            assert marks_of(await hub.log.get_meta("s")) == {queued.turn: "rt_a"}
            await a.cancel_turn("s", running.turn or "")
            records = await records_until(session, queued.after, ends("turn", queued.turn or ""))
            assert records[-1].type == "turn.completed"
        meta = await hub.log.get_meta("s")
        assert marks_of(meta) == {} and meta is not None and meta.data == {}
        assert (await hub.authorize("s", token)).title == "queue"  # the marks leave the rest of the metadata be


async def test_a_dead_members_queued_turn_is_ended_by_the_member_that_reaps_it(redis_server: RedisServer) -> None:
    url = redis_server.fresh_url() + "?lease=2"
    async with Hub.open(url) as hub:
        session, _ = await hub.create_session("s")
        await session.publish(TurnStarted(turn="t_running", owner="rt_dead"))
        dead = AdmittedMarks(hub, "rt_dead")
        dead.add("s", "t_queued")
        await dead.sync("s")
        live = AdmittedMarks(hub, "rt_live")
        live.add("s", "t_live_queued")
        await live.sync("s")
        assert marks_of(await hub.log.get_meta("s")) == {"t_queued": "rt_dead", "t_live_queued": "rt_live"}
        async with Cluster.open(hub) as member:
            assert isinstance(hub.log, RedisLog)
            await hub.log.client.set("sw:lease:rt_live", "1", px=60_000)
            # Nobody is reaped within half a lease of Redis starting (leases may have lapsed in an outage).
            async with asyncio.timeout(10):
                while await hub.store.membership.restarted():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            assert await member.check() == ["rt_dead"]
        state = await session.state()
        assert state.turns["t_running"].status == "interrupted"
        assert state.turns["t_queued"].status == "interrupted"
        assert "t_live_queued" not in state.turns
        assert marks_of(await hub.log.get_meta("s")) == {"t_live_queued": "rt_live"}
