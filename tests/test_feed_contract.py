"""The LiveFeed contract: every record appended to a session, by any process, reaches its channels once, in order.

A local store has one process, so its channels get every record from their own publishes and
its feed has nothing to add; a Redis store's feed brings the other processes' appends. The
rule a subscriber relies on is the same either way, checked at the hub for every backend; the
feed's own interface (watch, unwatch, close) is checked where it has work to do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest

from conftest import RedisServer, take_records
from sessionwire import Hub, Record
from sessionwire.backends import Store, open_store
from sessionwire.events import MessageDelta


def delta(text: str, message: str = "m1") -> MessageDelta:
    return MessageDelta(message=message, part=0, text=text)


@pytest.fixture
async def hubs(log_url: str) -> AsyncIterator[list[Hub]]:
    """Every hub a backend can open on one store URL: two on Redis, one on a local store."""
    count = 2 if log_url.startswith("redis://") else 1
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(Hub.open(log_url)) for _ in range(count)]


async def test_every_append_reaches_every_hub_once_and_in_order(hubs: list[Hub]) -> None:
    # Some records exist before the other hubs open the session: they read those, then follow live.
    early = await (await hubs[0].session("s1")).publish_many([delta(f"early{i}") for i in range(5)])
    channels = [await hub.session("s1") for hub in hubs]
    others = [await hub.session("s2") for hub in hubs]
    async with contextlib.AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(c.subscribe(0)) for c in channels]
        subs_other = [await stack.enter_async_context(c.subscribe(0)) for c in others]
        published: list[Record] = list(early)
        for i in range(30):
            # Appends from every hub in turn, singly and in batches.
            channel = channels[i % len(channels)]
            if i % 3:
                published.append(await channel.publish(delta(str(i))))
            else:
                published += await channel.publish_many([delta(f"{i}a"), delta(f"{i}b")])
        await others[-1].publish(delta("elsewhere", message="m2"))
        for sub in subs:
            got, _ = await take_records(sub, len(published))
            assert [r.seq for r in got] == list(range(1, len(published) + 1))
            assert [r.raw for r in got] == [r.raw for r in sorted(published, key=lambda r: r.seq)]
        for sub in subs_other:
            got, _ = await take_records(sub, 1)
            assert [(r.session, r.seq) for r in got] == [("s2", 1)]
        # Once: after everything above, the next record each subscriber sees is the next one
        # appended (no late duplicate, no other session's record in between).
        last_s1 = await channels[-1].publish(delta("last"))
        last_s2 = await others[0].publish(delta("last", message="m2"))
        for sub in subs:
            assert [r.raw for r in (await take_records(sub, 1))[0]] == [last_s1.raw]
        for sub in subs_other:
            assert [r.raw for r in (await take_records(sub, 1))[0]] == [last_s2.raw]
    states = [(await c.state()).to_json() for c in channels]
    assert states.count(states[0]) == len(states)


async def test_a_feeds_calls_are_harmless_on_any_store(store: Store) -> None:
    # What the hub does with every feed: unwatch what it evicts (watched or not), close it
    # (then the store closes it again).
    target = Target("s1")
    store.feed.watch(target)
    store.feed.unwatch("s1")
    store.feed.unwatch("never-watched")
    await store.feed.aclose()
    await store.feed.aclose()
    assert await store.log.append("s1", [delta("x")])  # the rest of the store still works
    assert target.batches == []  # nothing is delivered once unwatched (nor was anything to deliver)


class Target:
    """A FeedTarget that keeps what it is given (and, apart, every batch as delivered)."""

    def __init__(self, session: str, last_seq: int = 0) -> None:
        self.id = session
        self.last_seq = last_seq
        self.closed = False
        self.records: list[Record] = []
        self.batches: list[tuple[int, list[Record]]] = []  # (last_seq when delivered, records)
        self.behind: list[bool] = []
        self.delivered = asyncio.Event()

    def deliver(self, records: Sequence[Record]) -> None:
        self.batches.append((self.last_seq, list(records)))
        for record in records:
            if record.seq > self.last_seq:
                self.records.append(record)
                self.last_seq = record.seq
        self.delivered.set()

    def feed_behind(self, behind: bool) -> None:
        self.behind.append(behind)

    async def until(self, seq: int) -> None:
        async with asyncio.timeout(10):
            while self.last_seq < seq:
                self.delivered.clear()
                await self.delivered.wait()

    def check_delivered_once_in_order(self) -> None:
        """Each batch held this session's records after the target's last seq, in seq order, each once."""
        for last_seq, records in self.batches:
            assert [r.session for r in records] == [self.id] * len(records)
            seqs = [r.seq for r in records]
            assert seqs == list(range(last_seq + 1, last_seq + 1 + len(seqs)))


async def test_a_redis_feed_delivers_another_stores_appends_from_the_targets_seq(redis_server: RedisServer) -> None:
    url = redis_server.fresh_url()
    async with open_store(url) as a, open_store(url) as b, open_store(url) as c:
        await a.log.append("s1", [delta(str(i)) for i in range(5)])
        await a.log.append("s2", [delta("other")])
        target = Target("s1", last_seq=2)  # it has records 1 and 2 already
        b.feed.watch(target)
        await target.until(5)
        assert [r.seq for r in target.records] == [3, 4, 5]
        await a.log.append("s1", [delta("live")])
        await target.until(6)
        assert [r.seq for r in target.records] == [3, 4, 5, 6]
        # Unwatched: the feed stops, and a session watched later is fed from its own seq.
        b.feed.unwatch("s1")
        later = Target("s2")
        b.feed.watch(later)
        await later.until(1)
        await a.log.append("s1", [delta("unheard")])
        await a.log.append("s2", [delta("heard")])
        await later.until(2)
        assert [r.seq for r in target.records] == [3, 4, 5, 6]
        assert [r.event.text for r in later.records] == ["other", "heard"]  # type: ignore[union-attr]
        target.check_delivered_once_in_order()
        later.check_delivered_once_in_order()
        # Closed: the feed delivers nothing more, while another store's feed still gets the record.
        await b.feed.aclose()
        await b.feed.aclose()  # closing twice is harmless
        witness = Target("s2", last_seq=2)
        c.feed.watch(witness)
        await a.log.append("s2", [delta("after close")])
        await witness.until(3)
        assert later.last_seq == 2


async def test_a_redis_feed_tells_its_targets_when_it_is_behind(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = RedisServer(tmp_path_factory.mktemp("feed"), appendonly=True)
    server.start()
    try:
        async with open_store(server.url + "?retry_for=10") as a, open_store(server.url) as b:
            target = Target("s1")
            b.feed.watch(target)
            await a.log.append("s1", [delta("before")])
            await target.until(1)
            server.stop()
            async with asyncio.timeout(10):
                while True not in target.behind:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            server.start()
            await a.log.append("s1", [delta("after")])
            await target.until(2)
            async with asyncio.timeout(10):
                while target.behind[-1] is not False:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            assert [r.seq for r in target.records] == [1, 2]
            target.check_delivered_once_in_order()
    finally:
        server.stop()
