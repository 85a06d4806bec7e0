"""The Membership contract: leases, the owners' index written by the log, clean-up claims (every backend)."""

from __future__ import annotations

import asyncio

import pytest

from conftest import RedisServer
from sessionwire.backends import Fence, Store, open_store
from sessionwire.errors import Fenced
from sessionwire.events import JobStarted, MessageDelta, TurnStarted


async def test_a_lease_is_taken_renewed_and_released(store: Store) -> None:
    membership = store.membership
    assert membership.lease > 0
    assert not await membership.held("rt_a")
    first = await membership.renew("rt_a")  # not held before: taken, a generation
    assert first >= 1
    assert await membership.renew("rt_a") == first  # held: extended, the same generation
    assert await membership.held("rt_a") and not await membership.held("rt_b")
    await membership.release("rt_a")
    assert not await membership.held("rt_a")
    assert await membership.renew("rt_a") > first  # released: taken anew, a new generation
    # A bool on every backend; its value depends on how long the server has been up (see below for Redis).
    assert isinstance(await membership.restarted(), bool)


async def test_the_log_indexes_the_owners_of_the_work_it_appends(store: Store) -> None:
    log, membership = store.log, store.membership
    await log.append("s1", [TurnStarted(turn="t1", owner="rt_a"), MessageDelta(message="m", part=0, text="x")])
    await log.append("s2", [JobStarted(job="j1", title="work", owner="rt_a")])
    await log.append("s3", [TurnStarted(turn="t2", owner="rt_b")])
    await log.append("s4", [TurnStarted(turn="t3"), MessageDelta(message="m", part=0, text="no owner")])
    assert await membership.owners() == ["rt_a", "rt_b"]
    assert await membership.owned("rt_a") == ["s1", "s2"]
    assert await membership.owned("rt_b") == ["s3"]
    assert await membership.owned("rt_none") == []
    await membership.forget("rt_a", "s1")
    assert await membership.owned("rt_a") == ["s2"]
    await membership.forget("rt_b")
    assert await membership.owners() == ["rt_a"] and await membership.owned("rt_b") == []


async def test_releasing_a_lease_drops_its_index_and_deleting_a_session_leaves_every_index(store: Store) -> None:
    log, membership = store.log, store.membership
    for session in ("s1", "s2"):
        await log.append(session, [TurnStarted(turn=f"t_{session}", owner="rt_a")])
        await log.append(session, [TurnStarted(turn=f"u_{session}", owner="rt_b")])
    await log.delete("s1")
    assert await membership.owned("rt_a") == ["s2"] and await membership.owned("rt_b") == ["s2"]
    await membership.renew("rt_a")
    await membership.renew("rt_b")
    await membership.release("rt_a")
    assert await membership.owners() == ["rt_b"] and await membership.owned("rt_a") == []
    assert not await membership.held("rt_a") and await membership.held("rt_b")
    # Released work is not indexed again until the owner starts new work.
    await log.append("s2", [MessageDelta(message="m", part=0, text="no owner")])
    assert await membership.owners() == ["rt_b"]
    await log.append("s3", [JobStarted(job="j1", title="work", owner="rt_a")])
    assert await membership.owners() == ["rt_a", "rt_b"] and await membership.owned("rt_a") == ["s3"]


async def test_one_claimer_cleans_up_a_dead_owner(store: Store) -> None:
    membership = store.membership
    first = await asyncio.gather(membership.claim("rt_dead", "rt_1"), membership.claim("rt_dead", "rt_2"))
    assert sorted(first) == [False, True]
    winner, loser = ("rt_1", "rt_2") if first[0] else ("rt_2", "rt_1")
    assert await membership.claim("rt_dead", winner)  # the holder keeps its claim
    assert not await membership.claim("rt_dead", loser)
    assert await membership.claim("rt_other", loser)  # one claim per dead owner
    await membership.unclaim("rt_dead")
    assert await membership.claim("rt_dead", loser)


# Redis only below: a local store is one process, and its leases never lapse.


async def test_two_stores_on_one_redis_share_leases_index_and_claims(redis_server: RedisServer) -> None:
    # What makes it a cluster's membership is that every process gets the same answers.
    log_url = redis_server.fresh_url()
    async with open_store(log_url + "?lease=0.3") as a, open_store(log_url + "?lease=0.3") as b:
        await a.membership.renew("rt_a")
        assert await b.membership.held("rt_a")
        await a.log.append("s1", [TurnStarted(turn="t1", owner="rt_a")])
        assert await b.membership.owned("rt_a") == ["s1"]
        assert await a.membership.claim("rt_x", "rt_a") and not await b.membership.claim("rt_x", "rt_b")
        await b.membership.release("rt_a")
        assert not await a.membership.held("rt_a") and await a.membership.owned("rt_a") == []


async def test_a_redis_lease_lapses_unless_renewed(redis_server: RedisServer) -> None:
    async with open_store(redis_server.fresh_url() + "?lease=0.3") as store:
        membership = store.membership
        assert membership.lease == 0.3
        first = await membership.renew("rt_a")
        # An owner that stops renewing loses its lease within the lease time...
        async with asyncio.timeout(5):
            while await membership.held("rt_a"):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        # ... and renewing it then says so: the lease was taken anew, with a new generation.
        assert await membership.renew("rt_a") == first + 1
        assert await membership.held("rt_a")
        # The server has been up for more than half a lease soon (its uptime counts whole seconds).
        async with asyncio.timeout(5):
            while await membership.restarted():  # noqa: ASYNC110
                await asyncio.sleep(0.05)


async def test_a_fenced_owner_appends_nothing_more_until_its_next_generation(store: Store) -> None:
    log, membership = store.log, store.membership
    old = Fence("rt_a", await membership.renew("rt_a"))
    await log.append("s1", [MessageDelta(message="m", part=0, text="before")], fence=old)
    assert not await membership.fence("rt_a")  # it holds its lease: not fenced
    # A member that ends rt_a's work fences it first (its lease is not held: it stalled, or died).
    await membership.release("rt_a")
    assert await membership.fence("rt_a")
    with pytest.raises(Fenced):
        await log.append("s1", [MessageDelta(message="m", part=0, text="late")], fence=old)
    # A batch of several sessions' appends: only the fenced one is refused.
    results = await asyncio.gather(
        log.append("s1", [MessageDelta(message="m", part=0, text="late")], fence=old),
        log.append("s2", [MessageDelta(message="m", part=0, text="other")], fence=Fence("rt_b", 1)),
        log.append("s2", [MessageDelta(message="m", part=0, text="nobody's")]),
        return_exceptions=True,
    )
    assert isinstance(results[0], Fenced) and [r.seq for r in results[1]] == [1] and [r.seq for r in results[2]] == [2]  # type: ignore[union-attr]
    assert [r.event.text for r in await log.read("s1")] == ["before"]  # type: ignore[union-attr]
    # Back, it takes its lease again with a new generation: its new work appends.
    new = Fence("rt_a", await membership.renew("rt_a"))
    assert new.generation > old.generation
    assert [r.seq for r in await log.append("s1", [MessageDelta(message="m", part=0, text="new")], fence=new)] == [2]
    # A member does not fence an owner that holds its lease.
    assert not await membership.fence("rt_a")
    await log.append("s1", [MessageDelta(message="m", part=0, text="still")], fence=new)
