"""The Redis live feed: hubs in different processes (here: different Redis clients) share sessions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from conftest import RedisServer, take_records
from sessionwire import Control, Hub, Record
from sessionwire.backends.redis import RedisFeed, RedisLog
from sessionwire.channel import Item
from sessionwire.events import MessageDelta, TurnStarted


def delta(text: str) -> MessageDelta:
    return MessageDelta(message="m1", part=0, text=text)


@pytest.fixture
async def hubs(redis_server: RedisServer) -> AsyncIterator[tuple[Hub, Hub, Hub]]:
    url = redis_server.fresh_url()
    async with Hub.open(url) as a, Hub.open(url) as b, Hub.open(url) as c:
        yield a, b, c


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds (polling Redis-side state there is no event for)."""
    async with asyncio.timeout(timeout):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.02)


def bridge_of(hub: Hub) -> RedisFeed:
    feed = hub.store.feed
    assert isinstance(feed, RedisFeed)
    return feed


def redis_log(hub: Hub) -> RedisLog:
    assert isinstance(hub.log, RedisLog)
    return hub.log


async def test_records_published_on_one_hub_reach_subscribers_of_the_others(hubs: tuple[Hub, Hub, Hub]) -> None:
    a, b, c = hubs
    session, _ = await a.create_session("s1")
    on_b, on_c = await b.session("s1"), await c.session("s1")
    async with on_b.subscribe(0) as sub_b, on_c.subscribe(0) as sub_c:
        published = [await session.publish(TurnStarted(turn="t1"))]
        published += await session.publish_many([delta(str(i)) for i in range(50)])
        got_b, items_b = await take_records(sub_b, 52)
        got_c, _ = await take_records(sub_c, 52)
    assert [r.raw for r in got_b] == [r.raw for r in got_c]
    assert [r.seq for r in got_b] == list(range(1, 53))
    assert [r.raw for r in got_b[1:]] == [r.raw for r in published]
    assert all(isinstance(i, Record) for i in items_b)
    assert (await on_b.state()).to_json() == (await session.state()).to_json() == (await on_c.state()).to_json()


async def test_producers_on_several_hubs_give_everyone_one_order(hubs: tuple[Hub, Hub, Hub]) -> None:
    channels = [await hub.session("shared") for hub in hubs]

    async def produce(index: int) -> None:
        for i in range(30):
            await channels[index].publish_many([delta(f"{index}:{i}"), delta(f"{index}:{i}'")])

    async with channels[0].subscribe(0) as s0, channels[1].subscribe(0) as s1, channels[2].subscribe(0) as s2:
        await asyncio.gather(produce(0), produce(1), produce(2))
        seen = [(await take_records(sub, 180))[0] for sub in (s0, s1, s2)]
    assert [r.seq for r in seen[0]] == list(range(1, 181))
    assert [r.raw for r in seen[0]] == [r.raw for r in seen[1]] == [r.raw for r in seen[2]]
    # Each producer's two records of one publish are consecutive, wherever they are read.
    texts = [r.event.text for r in seen[1]]  # type: ignore[union-attr]
    for first, second in zip(texts[::2], texts[1::2]):
        assert second == first + "'"
    assert len({(await ch.state()).to_json() for ch in channels}) == 1
    assert [ch.gaps for ch in channels] == [[], [], []]


async def test_one_blocked_reader_per_hub_whatever_the_subscribers(
    hubs: tuple[Hub, Hub, Hub], redis_server: RedisServer
) -> None:
    a, b, _ = hubs
    for i in range(10):
        await a.create_session(f"s{i}")
    async with contextlib.AsyncExitStack() as stack:
        for i in range(10):
            channel = await b.session(f"s{i}")
            for _ in range(3):
                await stack.enter_async_context(channel.subscribe(0))
        assert sorted(bridge_of(b).watched) == sorted(f"s{i}" for i in range(10))
        raw = aioredis.Redis.from_url(redis_server.url)
        try:
            async with asyncio.timeout(10):
                while True:
                    clients = await raw.client_list()
                    db = str(b.log.url.rsplit("/", 1)[1])  # type: ignore[attr-defined]
                    readers = [cl for cl in clients if cl["cmd"] == "xread" and "b" in cl["flags"] and cl["db"] == db]
                    # One on b for its 10 sessions and 30 subscribers, one on a (which created them).
                    if len(readers) == 2:
                        break
                    await asyncio.sleep(0.01)
        finally:
            await raw.aclose()


async def test_a_session_opened_while_the_reader_blocks_is_followed_at_once(hubs: tuple[Hub, Hub, Hub]) -> None:
    a, b, _ = hubs
    await b.session("first")  # b's reader now blocks (for block_ms = 5 s) on "first" only
    session, _ = await a.create_session("late")
    late = await b.session("late")
    async with late.subscribe(0) as sub:
        await session.publish(delta("x"))
        # Well before the blocked read would time out: the wake entry renewed it.
        records, _ = await take_records(sub, 2, timeout=2.0)
    assert [r.type for r in records] == ["session.created", "message.delta"]


async def test_eviction_stops_following_and_reopening_resumes(hubs: tuple[Hub, Hub, Hub]) -> None:
    a, b, _ = hubs
    session, _ = await a.create_session("s1")
    await b.session("s1")
    await b.evict("s1")
    assert "s1" not in bridge_of(b).watched
    await session.publish_many([delta("while away"), delta("still away")])
    reopened = await b.session("s1")
    assert "s1" in bridge_of(b).watched
    async with reopened.subscribe(0) as sub:
        await session.publish(delta("back"))
        records, _ = await take_records(sub, 4)
    assert [r.seq for r in records] == [1, 2, 3, 4]


async def test_subscribers_ride_out_a_redis_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    try:
        async with Hub.open(server.url + "?retry_for=20") as a, Hub.open(server.url + "?retry_for=20") as b:
            producer = await a.session("s1")
            consumer = await b.session("s1")
            async with consumer.subscribe(0) as sub:
                published = [await producer.publish(delta(str(i))) for i in range(20)]
                await take_records(sub, 20)
                server.stop()
                # The live feed from other processes is cut: the subscriber is told so.
                async with asyncio.timeout(10):
                    assert await sub.batch() == [Control(control="lagging", session="s1")]
                # Appends made while Redis is down wait for it and then go through, in order.
                during = asyncio.create_task(producer.publish_many([delta("d1"), delta("d2")]))
                await asyncio.sleep(0.05)
                assert not during.done()
                server.start()
                published += await asyncio.wait_for(during, 20)
                published += [await producer.publish(delta(f"after{i}")) for i in range(10)]
                records, items = await take_records(sub, 12, timeout=20)
                async with asyncio.timeout(10):
                    while not any(isinstance(i, Control) and i.control == "caught_up" for i in items):
                        items += await sub.batch()
                assert consumer.lagging == 0
            assert [r.seq for r in records] == list(range(21, 33))
            assert [r.raw for r in records] == [r.raw for r in published[20:]]
            assert [i.control for i in items if isinstance(i, Control)] == ["caught_up"]
            assert bridge_of(b).errors > 0
    finally:
        server.stop()


async def test_a_channel_whose_records_were_trimmed_meanwhile_jumps_to_the_snapshot(redis_server: RedisServer) -> None:
    url = redis_server.fresh_url()
    async with Hub.open(url + "?retain=5") as a, Hub.open(url + "?retain=5") as b:
        producer = await a.session("s1")
        await producer.publish(TurnStarted(turn="t1"))
        behind = await b.session("s1")
        bridge_of(b).unwatch("s1")  # b stops hearing about s1 for a while...
        await producer.publish_many([delta(str(i)) for i in range(50)])
        await producer.save_snapshot()  # ...and the log drops all but the last 5 records
        assert (await a.log.bounds("s1")) == (47, 51)
        async with behind.subscribe(1) as sub:
            bridge_of(b).watch(behind)
            await producer.publish(delta("live"))
            items: list[Item] = []
            async with asyncio.timeout(10):
                # Records 2..46 are gone: the subscriber gets a snapshot, then whatever follows it.
                while not any(i.seq == 52 if isinstance(i, Record) else (i.at or 0) >= 52 for i in items):
                    items += await sub.batch()
        snapshot = next(i for i in items if isinstance(i, Control) and i.control == "snapshot")
        assert snapshot.at in (51, 52)
        assert all(i.seq > snapshot.at for i in items if isinstance(i, Record))
        # The channel jumped to the stored snapshot, took the rest, and has no gap left over.
        assert behind.last_seq == 52 and behind.gaps == []
        assert (await behind.state()).to_json() == (await producer.state()).to_json()


async def test_the_reader_survives_an_error_that_is_not_a_lost_connection(hubs: tuple[Hub, Hub, Hub]) -> None:
    a, b, _ = hubs
    session, _ = await a.create_session("s1")
    on_b = await b.session("s1")
    bridge = bridge_of(b)
    raw = redis_log(b).client
    # A key of the wrong type among the watched streams: every XREAD answers WRONGTYPE.
    await b.session("broken")
    await raw.set(redis_log(b).keys.stream("broken"), "not a stream")
    await b.session("s2")  # wakes the reader, which reads the streams again
    await until(lambda: _true(bridge.errors > 0))
    await raw.delete(redis_log(b).keys.stream("broken"))
    async with on_b.subscribe(0) as sub:
        published = await session.publish(delta("after"))
        records, _ = await take_records(sub, 2)
    assert [r.seq for r in records] == [1, published.seq]


async def _true(value: bool) -> bool:
    return value
