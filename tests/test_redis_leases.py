"""Leases in one process: which owners count as alive, and who ends a dead owner's work, once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from conftest import RedisServer
from sessionwire import Hub, Record, Session, SessionNotFound
from sessionwire.backends.redis import RedisLog
from sessionwire.errors import Conflict, LogUnavailable
from sessionwire.events import ApprovalRequested, JobStarted, MessageDelta, TurnStarted
from sessionwire.runtime import Cluster, RoutedRuntime, Runtime, ScriptedProvider


@pytest.fixture
async def url(redis_server: RedisServer) -> str:
    return redis_server.fresh_url()


def leased(url: str, lease: float, **params: float) -> str:
    """``url`` with a lease time (and other store parameters) in its query."""
    query = "&".join(f"{k}={v}" for k, v in {"lease": lease, **params}.items())
    return url + ("&" if "?" in url else "?") + query


@dataclass
class Member:
    """One process of a cluster: its hub, its local runtime and the runtime routed through the store."""

    hub: Hub
    runtime: Runtime
    routed: RoutedRuntime


@contextlib.asynccontextmanager
async def member(url: str, delay: float = 0.002) -> AsyncIterator[Member]:
    """A process on the store at ``url``: hub, cluster membership, runtime, commands served."""
    async with Hub.open(url) as hub, Cluster.open(hub) as cluster:
        async with (
            Runtime(hub, ScriptedProvider(delay=delay), owner=cluster.owner, ownership=cluster) as runtime,
            cluster.route(runtime) as routed,
        ):
            yield Member(hub, runtime, routed)


@pytest.fixture
async def raw(url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(url)
    try:
        yield client
    finally:
        await client.aclose()


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds (polling Redis-side state there is no event for)."""
    async with asyncio.timeout(timeout):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.02)


def log_of(hub: Hub) -> RedisLog:
    assert isinstance(hub.log, RedisLog)
    return hub.log


async def start_work(hub: Hub, session_id: str, owner: str) -> None:
    session = await hub.session(session_id)
    await session.publish_many(
        [
            TurnStarted(turn=f"t_{owner}", owner=owner),
            MessageDelta(turn=f"t_{owner}", message=f"m_{owner}", part=0, text="partial"),
            ApprovalRequested(turn=f"t_{owner}", approval=f"a_{owner}", action="deploy"),
            JobStarted(job=f"j_{owner}", title="work", owner=owner),
        ]
    )


async def test_the_log_indexes_owners_with_the_records_that_start_their_work(url: str, raw: aioredis.Redis) -> None:
    async with Hub.open(url) as hub:
        await start_work(hub, "s1", "rt_a")
        await start_work(hub, "s2", "rt_a")
        await (await hub.session("s3")).publish(MessageDelta(message="m", part=0, text="no owner here"))
    assert await raw.smembers("sw:owners") == {b"rt_a"}
    assert await raw.smembers("sw:owned:rt_a") == {b"s1", b"s2"}


async def test_a_dead_owner_work_is_ended_once_and_a_live_owner_is_left_alone(url: str, raw: aioredis.Redis) -> None:
    async with Hub.open(leased(url, 2)) as h1, Hub.open(leased(url, 2)) as h2:
        await start_work(h1, "s1", "rt_dead")
        await start_work(h1, "s1", "rt_live")
        await raw.set("sw:lease:rt_live", "1", px=60_000)
        # Past the grace after a Redis start (half a lease).
        await until(lambda: _uptime_at_least(raw, 1))
        async with Cluster.open(h1) as m1, Cluster.open(h2) as m2:
            assert await m1.is_owner_alive("rt_live") and await m1.is_owner_alive(m2.owner)
            # Both members find the dead owner at once; one claims it and writes the terminals.
            reaped = await asyncio.gather(m1.check(), m2.check())
            assert sorted(reaped) == [[], ["rt_dead"]]
            # For the member that did not claim it, the dead owner's work is not its to end.
            loser = m2 if reaped[0] else m1
            assert await loser.is_owner_alive("rt_dead")
            records = await log_of(h1).read("s1")
        closing = [r.type for r in records[8:]]
        assert sorted(closing) == ["approval.resolved", "job.interrupted", "turn.interrupted"]
        assert closing[0] == "approval.resolved"  # resolved before its turn ends
        state = await (await h2.session("s1")).state()
        assert state.turns["t_rt_dead"].status == "interrupted"
        assert state.jobs["j_rt_dead"].status == "interrupted"
        assert state.approvals["a_rt_dead"].status == "expired"
        assert state.turns["t_rt_live"].status == "running" and state.jobs["j_rt_live"].status == "running"
        assert state.approvals["a_rt_live"].status == "pending"
    assert await raw.smembers("sw:owners") == {b"rt_live"}
    assert await raw.exists("sw:owned:rt_dead") == 0


async def test_a_member_takes_its_lease_renews_it_and_gives_it_back(url: str, raw: aioredis.Redis) -> None:
    async with Hub.open(leased(url, 0.3)) as hub:
        async with Cluster.open(hub) as member:
            key = f"sw:lease:{member.owner}"
            assert 0 < await raw.pttl(key) <= 300
            await start_work(hub, "s1", member.owner)
            # Renewed every lease/3: still there after several lease times.
            deadline = asyncio.get_running_loop().time() + 1.0
            while asyncio.get_running_loop().time() < deadline:
                assert await raw.exists(key) == 1
                await asyncio.sleep(0.05)
        # A clean exit: nothing left for others to recover.
        assert await raw.exists(key) == 0
        assert await raw.smembers("sw:owners") == set()


async def test_a_cluster_of_one_process_ends_only_a_former_processs_work(tmp_path: Path) -> None:
    # The local membership: work started in this process (a runtime's, a producer's records)
    # is alive; what a former process left open is not, and start-up recovery ends it.
    url = f"sqlite:///{tmp_path / 'one.db'}"
    async with Hub.open(url) as hub:
        await hub.create_session("s1")
        await start_work(hub, "s1", "rt_former")
    async with Hub.open(url) as hub, Cluster.open(hub) as member:
        await start_work(hub, "s2", "ext_producer")
        assert await member.is_owner_alive(member.owner) and await member.is_owner_alive("ext_producer")
        assert not await member.is_owner_alive("rt_former")
        assert await member.check() == []
        async with Runtime(hub, ScriptedProvider(delay=0), ownership=member):
            pass  # its start-up recovery ends the former process's work
        former = await (await hub.session("s1")).state()
        assert former.turns["t_rt_former"].status == "interrupted"
        assert former.jobs["j_rt_former"].status == "interrupted"
        alive = await (await hub.session("s2")).state()
        assert alive.turns["t_ext_producer"].status == "running"


async def test_work_whose_end_could_not_be_written_fails_once_redis_is_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    try:
        async with Hub.open(server.url + "?retry_for=0.2&lease=30") as hub, Cluster.open(hub) as member:
            provider = ScriptedProvider(delay=0.002)
            async with (
                Runtime(hub, provider, owner=member.owner, ownership=member, coalesce_ms=0) as runtime,
                member.route(runtime) as routed,
            ):
                session, _ = await hub.create_session("s1")
                turn = (await routed.dispatch("s1", "/approve deploy")).turn
                assert turn is not None
                async with session.subscribe(0) as sub:
                    async with asyncio.timeout(10):
                        while not any(
                            isinstance(i, Record) and i.type == "approval.requested" for i in await sub.batch()
                        ):
                            pass
                server.stop()
                # The turn gives up (its appends fail after retry_for), and so does its end.
                await runtime.cancel_turn("s1", turn)
                assert not runtime.runs("s1", turn)
                assert "s1" in log_of(hub).unwritten
                assert (await session.state()).turns[turn].status == "running"
                server.start()
                await member.close_unwritten()
                state = await session.state()
                assert state.turns[turn].status == "failed" and state.turns[turn].code == "log_unavailable"
                assert "unreachable" in (state.turns[turn].error or "")
                assert [a.status for a in state.approvals.values()] == ["expired"]
                assert log_of(hub).unwritten == set()
                # Said once: a second look finds nothing left to end.
                last = session.last_seq
                await member.close_unwritten()
                assert session.last_seq == last
    finally:
        server.stop()


async def test_commands_still_reach_the_owner_after_a_redis_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    try:
        url = server.url + "?retry_for=20&lease=30&command_timeout=5"
        async with (
            Hub.open(url) as hub_a,
            Hub.open(url) as hub_b,
            Cluster.open(hub_a) as member_a,
            Cluster.open(hub_b) as member_b,
            Runtime(hub_a, ScriptedProvider(delay=0.002), owner=member_a.owner, ownership=member_a) as runtime_a,
            Runtime(hub_b, ScriptedProvider(delay=0.002), owner=member_b.owner, ownership=member_b) as runtime_b,
            member_a.route(runtime_a) as routed_a,
            member_b.route(runtime_b) as routed_b,
        ):
            session, _ = await hub_a.create_session("s1")
            turn = (await routed_a.dispatch("s1", "/approve deploy")).turn
            assert turn is not None
            async with session.subscribe(0) as sub:
                async with asyncio.timeout(10):
                    while not any(isinstance(i, Record) and i.type == "approval.requested" for i in await sub.batch()):
                        pass
            server.stop()
            server.start()
            approval = next(iter((await session.state()).approvals))
            await routed_b.resolve_approval("s1", approval, "approve")
            await until(lambda: _status_is_not(session, turn, "running"))
            assert (await session.state()).approvals[approval].status == "approved"
    finally:
        server.stop()


async def test_an_owner_that_fails_a_command_answers_at_once_with_its_error(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with member(leased(url, 30)) as a, member(leased(url, 30)) as b:
        hub_a, runtime_a, routed_b = a.hub, a.runtime, b.routed
        session, _ = await hub_a.create_session("s1")
        turn = (await runtime_a.dispatch("s1", "/approve deploy")).turn
        assert turn is not None
        on_b = await b.hub.session("s1")
        await until(lambda: _has_turn(on_b, turn))

        async def broken(session_id: str, work: str) -> None:
            raise LogUnavailable(f"redis unreachable while cancelling {work}")

        # The owner's runtime fails (its log is unreachable): the caller hears so, not a timeout.
        monkeypatch.setattr(runtime_a, "cancel_turn", broken)
        async with asyncio.timeout(5):
            with pytest.raises(LogUnavailable, match=f"cancelling {turn}"):
                await routed_b.cancel_turn("s1", turn)
        monkeypatch.undo()
        await routed_b.cancel_turn("s1", turn)
        assert (await session.state()).turns[turn].status == "cancelled"


async def test_a_member_leaves_work_alone_right_after_a_redis_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    try:
        async with Hub.open(server.url) as hub:
            await start_work(hub, "s1", "rt_live")
            await log_of(hub).client.set("sw:lease:rt_live", "1", px=1000)
            server.stop()
            # The outage outlasts the lease: its key is gone once Redis is back, though its
            # owner (alive, only cut off) takes it again at its next renewal.
            await asyncio.sleep(1.2)
            server.start()
        # A lease long enough that a slow machine gets here well within the grace (half a lease).
        async with Hub.open(leased(server.url, 8)) as hub, Cluster.open(hub) as member:
            assert await member.is_owner_alive("rt_live")
            assert await member.check() == []
            # An owner that stays away was dead after all: its work ends once the grace is over.
            await until(lambda: _true(bool(member.reaped)), timeout=20)
            state = await (await hub.session("s1")).state()
            assert state.turns["t_rt_live"].status == "interrupted"
    finally:
        server.stop()


async def _true(value: bool) -> bool:
    return value


async def _uptime_at_least(raw: aioredis.Redis, seconds: int) -> bool:
    return int((await raw.info("server"))["uptime_in_seconds"]) >= seconds


async def _status_is_not(session: Session, turn: str, status: str) -> bool:
    return (await session.state()).turns[turn].status != status


async def _has_turn(session: Session, turn: str) -> bool:
    return turn in (await session.state()).turns


async def test_a_deleted_session_leaves_no_key_behind(url: str, raw: aioredis.Redis) -> None:
    async with Hub.open(url) as hub:
        await hub.create_session("s1")
        await hub.create_session("s2")
        await start_work(hub, "s1", "rt_a")
        await start_work(hub, "s2", "rt_a")
        await start_work(hub, "s1", "rt_b")
        await hub.delete_session("s1")
        # Nothing of s1 is left, not even in the owners' indexes (a reaper would open it for nothing),
        # but its tombstone, which refuses late appends for a day (or until s1 is created again).
        keys = {k.decode() for k in await raw.keys("*") if not k.startswith((b"sw:batch:", b"sw:wake:"))}
        assert keys == {"sw:h:s2", "sw:x:s2", "sw:w:s2", "sw:sessions", "sw:owners", "sw:owned:rt_a", "sw:deleted:s1"}
        assert 0 < await raw.ttl("sw:deleted:s1") <= 86400
        await hub.create_session("s1")
        assert await raw.exists("sw:deleted:s1") == 0
        assert await raw.smembers("sw:owned:rt_a") == {b"s2"}


async def test_a_process_restarted_with_the_same_owner_id_ends_its_former_work(url: str, raw: aioredis.Redis) -> None:
    async with Hub.open(leased(url, 30)) as hub:
        await start_work(hub, "s1", "rt_fixed")
        # The former process died holding its lease (killed): it lapses within a lease.
        await raw.set("sw:lease:rt_fixed", "1", px=300)
        async with Cluster.open(hub, owner="rt_fixed") as member:
            assert await member.is_owner_alive("rt_fixed")  # its own, from now on
            state = await (await hub.session("s1")).state()
            assert state.turns["t_rt_fixed"].status == "interrupted"
            assert state.jobs["j_rt_fixed"].status == "interrupted"
            assert await raw.exists("sw:reaping:rt_fixed") == 0
            # Its new work is indexed again, and is its own.
            await start_work(hub, "s2", "rt_fixed")
            assert await raw.smembers("sw:owned:rt_fixed") == {b"s2"}


async def test_an_owner_id_in_use_by_a_live_process_is_refused(url: str, raw: aioredis.Redis) -> None:
    store = leased(url, 0.3)
    async with Hub.open(store) as h1, Hub.open(store) as h2, Cluster.open(h1, owner="rt_fixed"):
        await start_work(h1, "s1", "rt_fixed")
        with pytest.raises(Conflict, match="rt_fixed"):
            async with Cluster.open(h2, owner="rt_fixed"):
                pass
        state = await (await h1.session("s1")).state()
        assert state.turns["t_rt_fixed"].status == "running"


async def test_closing_a_session_ends_its_work_on_every_process(url: str) -> None:
    # DELETE may reach a process that runs nothing in the session: every process ends its own work.
    async with member(leased(url, 30), delay=0.01) as a, member(leased(url, 30), delay=0.01) as b:
        runtime_a, routed_b = a.runtime, b.routed
        session, _ = await a.hub.create_session("s1")
        job = (await runtime_a.start_job("s1", "long", "/long 5000")).job
        turn = (await runtime_a.dispatch("s1", "/long 5000")).turn
        assert job is not None and turn is not None
        await routed_b.close_session("s1")
        assert not runtime_a.runs("s1", job) and not runtime_a.runs("s1", turn)
        state = await session.state()
        assert state.jobs[job].status == "cancelled" and state.turns[turn].status == "cancelled"
        # Refused on the process that ran the work, until the session is deleted.
        with pytest.raises(SessionNotFound):
            await runtime_a.dispatch("s1", "again")


async def test_a_runtime_beside_the_servers_cluster_keeps_its_work() -> None:
    # One process, two runtimes on one hub (the server's, in a cluster, and one of the user's):
    # the cluster's watch must not take the other runtime for a dead one.
    async with Hub.open("memory://") as hub, Cluster.open(hub) as cluster:
        async with Runtime(hub, ScriptedProvider(delay=0.01)) as mine:
            await hub.create_session("s1")
            job = (await mine.start_job("s1", "long", "/long 5000")).job
            assert job is not None
            session = await hub.session("s1")
            await until(lambda: _job_started(session, job))
            assert await cluster.check() == []
            assert mine.runs("s1", job)
        # Closed, its work ended: nothing is left for anyone to clean up.
        assert await cluster.check() == []


async def _job_started(session: Session, job: str) -> bool:
    return job in (await session.state()).jobs
