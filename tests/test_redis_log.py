"""What the Redis log adds to the shared contract: stream layout, batching, retries, outages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from conftest import RedisServer, take_records
from sessionwire import ChannelOptions, Control, Hub
from sessionwire.backends import Snapshot, open_log
from sessionwire.backends.redis import RedisLog
from sessionwire.errors import LogUnavailable
from sessionwire.events import MessageDelta, Status


def delta(text: str) -> MessageDelta:
    return MessageDelta(message="m1", part=0, text=text)


@pytest.fixture
async def url(redis_server: RedisServer) -> str:
    return redis_server.fresh_url()


@pytest.fixture
async def raw(url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_a_session_is_a_stream_with_seq_ids_and_the_record_json_once(url: str, raw: aioredis.Redis) -> None:
    log = open_log(url)
    try:
        records = await log.append("s1", [delta("a"), delta("b")])
        records += await log.append("s1", [delta("c")])
    finally:
        await log.aclose()
    entries = await raw.xrange("sw:x:s1")
    assert [e[0] for e in entries] == [b"1-0", b"2-0", b"3-0"]
    # One field, the record's wire JSON: byte for byte what append returned.
    assert [e[1] for e in entries] == [{b"d": r.raw} for r in records]
    assert await raw.hget("sw:h:s1", "last") == b"3"
    # XREAD from a seq is the resume path.
    after_one = await raw.xread({"sw:x:s1": "1-0"})
    assert [e[0] for e in after_one[0][1]] == [b"2-0", b"3-0"]


async def test_url_parameters_set_prefix_and_retention(url: str, raw: aioredis.Redis) -> None:
    log = open_log(url + "?retain=2&prefix=app1&retry_for=0.5")
    assert isinstance(log, RedisLog)
    assert (log.retain, log.keys.prefix, log.retry_for) == (2, "app1", 0.5)
    try:
        await log.append("s1", [delta(str(i)) for i in range(10)])
        await log.save_snapshot("s1", Snapshot(6, b"{}"))
        # Records up to the snapshot may go, but the last two stay whatever the snapshot.
        assert await log.bounds("s1") == (7, 10)
        assert await raw.xlen("app1:x:s1") == 4
        await log.save_snapshot("s1", Snapshot(10, b"{}"))
        assert await log.bounds("s1") == (9, 10)
        assert [e[0] for e in await raw.xrange("app1:x:s1")] == [b"9-0", b"10-0"]
        assert await raw.exists("sw:x:s1") == 0
    finally:
        await log.aclose()


async def test_concurrent_appends_share_round_trips(url: str) -> None:
    log = open_log(url)
    try:
        results = await asyncio.gather(*(log.append(f"s{i % 7}", [delta(str(i))]) for i in range(500)))
        assert log.commits < 20, log.commits
        for s in range(7):
            seqs = sorted(r[0].seq for i, r in enumerate(results) if i % 7 == s)
            assert seqs == list(range(1, len(seqs) + 1))
            assert [r.seq for r in await log.read(f"s{s}")] == seqs
    finally:
        await log.aclose()


async def test_two_clients_share_one_sequencer(url: str) -> None:
    # Two logs on one URL stand for two processes: seqs stay gapless across them.
    a, b = open_log(url), open_log(url)
    try:

        async def produce(log: object, tag: str) -> list[int]:
            assert isinstance(log, RedisLog)
            out = []
            for i in range(40):
                out += [r.seq for r in await log.append("shared", [delta(f"{tag}{i}"), delta(f"{tag}{i}'")])]
            return out

        seqs_a, seqs_b = await asyncio.gather(produce(a, "a"), produce(b, "b"))
        assert sorted(seqs_a + seqs_b) == list(range(1, 161))
        texts = [r.event.text for r in await b.read("shared")]  # type: ignore[union-attr]
        assert sorted(texts) == sorted(
            [f"a{i}" for i in range(40)]
            + [f"a{i}'" for i in range(40)]
            + [f"b{i}" for i in range(40)]
            + [f"b{i}'" for i in range(40)]
        )
    finally:
        await a.aclose()
        await b.aclose()


class ReplyCutter:
    """A TCP proxy in front of redis-server that, when armed, forwards one request and drops its reply."""

    def __init__(self, port: int, db: str) -> None:
        self.port = port
        self.db = db
        self.armed = False
        self.cut = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/{self.db}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", self.port)

        async def upstream() -> None:
            while data := await client_r.read(65536):
                cut = self.armed and b"EVALSHA" in data.upper()
                redis_w.write(data)
                await redis_w.drain()
                if cut:
                    # The script reaches Redis and runs; its answer never reaches the log.
                    self.armed = False
                    self.cut += 1
                    await redis_r.read(65536)
                    client_w.close()
                    return

        async def downstream() -> None:
            while data := await redis_r.read(65536):
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client_w.close()
        redis_w.close()


async def test_a_batch_whose_answer_was_lost_is_applied_once(
    redis_server: RedisServer, url: str, raw: aioredis.Redis
) -> None:
    # The connection drops after the script ran: the retry carries the same batch token and
    # gets the first answer back instead of appending again.
    cutter = ReplyCutter(redis_server.port, url.rsplit("/", 1)[1])
    async with cutter as url:
        log = open_log(url)
        try:
            await log.append("s1", [delta("warm")])  # the script is loaded: the next call is an EVALSHA
            cutter.armed = True
            records = await log.append("s1", [delta("x"), delta("y")])
            assert cutter.cut == 1
            assert [r.seq for r in records] == [2, 3]
            assert [r.seq for r in await log.read("s1")] == [1, 2, 3]
            # Another batch (a new token) is appended.
            assert [r.seq for r in await log.append("s1", [delta("z")])] == [4]
        finally:
            await log.aclose()
    assert await raw.xlen("sw:x:s1") == 4
    # One key per log client, whatever the number of batches.
    batches = [k async for k in raw.scan_iter("sw:batch:*")]
    assert len(batches) == 1 and 0 < await raw.ttl(batches[0]) <= 3600


async def test_appends_wait_out_an_outage_and_fail_clearly_after_retry_for(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    log = open_log(server.url + "?retry_for=0.3")
    try:
        await log.append("s1", [delta("before")])
        server.stop()  # a clean shutdown: the AOF has everything
        with pytest.raises(LogUnavailable, match=r"unreachable for 0\.3 s"):
            await log.append("s1", [delta("lost")])
        server.start()
        (record,) = await log.append("s1", [delta("after")])
        assert record.seq == 2
        assert [r.event.text for r in await log.read("s1")] == ["before", "after"]  # type: ignore[union-attr]
    finally:
        await log.aclose()
        server.stop()


async def test_an_append_during_a_short_outage_goes_through(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    log = open_log(server.url + "?retry_for=20")
    try:
        await log.append("s1", [delta("before")])
        server.stop()
        pending = asyncio.create_task(log.append("s1", [delta("during")]))
        await asyncio.sleep(0)  # the append is under way while Redis is down
        assert not pending.done()
        server.start()
        (record,) = await asyncio.wait_for(pending, 20)
        assert record.seq == 2
        assert [r.seq for r in await log.read("s1")] == [1, 2]
    finally:
        await log.aclose()
        server.stop()


async def lose(raw: aioredis.Redis, session: str, after: int) -> None:
    """What a Redis crash with ``appendfsync everysec`` can do: forget the records after ``after``."""
    stream = f"sw:x:{session}"
    kept = await raw.xrange(stream, "-", f"{after}-0")
    await raw.delete(stream)  # XDEL would keep the stream's top id: rebuilt, as the AOF replays it
    for entry, fields in kept:
        await raw.xadd(stream, fields, id=entry)
    await raw.hset(f"sw:h:{session}", "last", after)


async def test_records_the_store_lost_are_put_back_before_anything_new_is_appended(
    url: str, raw: aioredis.Redis
) -> None:
    async with Hub.open(url) as hub, Hub.open(url) as other:
        session, _ = await hub.create_session("s1")
        await session.publish_many([Status(text=str(i)) for i in range(5)])  # seqs 2..6
        delivered = await hub.log.read("s1")
        async with session.subscribe(0) as sub:
            await take_records(sub, 6)
            await lose(raw, "s1", 3)
            record = await session.publish(Status(text="new"))
            assert record.seq == 7  # not 4: seqs 4..6 were seen, they came back first
            records, _ = await take_records(sub, 1)
            assert [r.seq for r in records] == [7]
        assert [r.raw for r in await other.log.read("s1")] == [*[r.raw for r in delivered], record.raw]


async def test_a_process_that_no_longer_holds_the_lost_records_ends_its_subscriptions(
    url: str, raw: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    async with Hub.open(url, ChannelOptions(ring_records=2)) as hub:
        session, _ = await hub.create_session("s1")
        await session.publish_many([Status(text=str(i)) for i in range(5)])
        async with session.subscribe(0) as sub:
            await take_records(sub, 6)
            await lose(raw, "s1", 3)  # this channel's ring holds 5 and 6 only
            record = await session.publish(Status(text="new"))
            # Its subscribers are told (they saw 4..6, which the store no longer has) ...
            assert await sub.batch() == [Control(control="ended", session="s1", reason="log_lost")]
        assert "no longer holds them" in caplog.text
        # ... and the session goes on from what the store has: nobody sees one seq twice here.
        assert record.seq == 4
        assert [r.seq for r in await hub.log.read("s1")] == [1, 2, 3, 4]


async def test_lost_records_are_never_put_back_into_another_history(url: str, raw: aioredis.Redis) -> None:
    async with Hub.open(url) as hub:
        session, _ = await hub.create_session("s1", title="old")
        await session.publish_many([Status(text=str(i)) for i in range(5)])
        async with session.subscribe(0) as sub:
            await take_records(sub, 6)
            # The session was deleted and created again elsewhere, and this process missed it.
            await raw.delete("sw:x:s1", "sw:h:s1")
            async with Hub.open(url) as other:
                await other.create_session("s1", title="new")
            record = await session.publish(Status(text="mine"))
            assert await sub.batch() == [Control(control="ended", session="s1", reason="log_lost")]
        assert record.seq == 2
        records = await hub.log.read("s1")
        assert [r.seq for r in records] == [1, 2] and records[0].event.title == "new"  # type: ignore[union-attr]
