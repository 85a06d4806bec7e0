"""The hub: opening sessions, eviction and reopening from a snapshot, creation, tokens, closing."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import WatchedLog
from sessionwire import ChannelOptions, Hub, Record, fold_records
from sessionwire.backends import SessionMeta, Snapshot, open_log
from sessionwire.backends.memory import MemoryLog
from sessionwire.errors import Forbidden, LogClosed, SessionExists, SessionNotFound, Unauthorized
from sessionwire.events import MessageDelta, TurnStarted


def delta(text: str) -> MessageDelta:
    return MessageDelta(message="m1", part=0, text=text)


class WatchedMemoryLog(MemoryLog):
    """A memory log that tells when a snapshot was stored."""

    def __init__(self) -> None:
        super().__init__()
        self.stored = asyncio.Event()

    async def save_snapshot(self, session: str, snapshot: Snapshot) -> None:
        await super().save_snapshot(session, snapshot)
        self.stored.set()


async def test_session_get_or_create_writes_nothing() -> None:
    async with Hub.open("memory://") as hub:
        assert hub.sessions() == []
        session = await hub.session("s1")
        assert await hub.session("s1") is session
        assert hub.sessions() == ["s1"]
        assert hub.open_session("s1") is session and hub.open_session("s2") is None
        assert await hub.log.bounds("s1") == (0, 0)
        assert await hub.log.get_meta("s1") is None
        with pytest.raises(ValueError):
            await hub.session("")


async def test_concurrent_opens_share_one_channel() -> None:
    async with Hub.open("memory://") as hub:
        opened = await asyncio.gather(*(hub.session("s1") for _ in range(10)))
        assert all(s is opened[0] for s in opened)


async def test_eviction_reopens_from_the_snapshot_not_the_whole_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    options = ChannelOptions(snapshot_every=100)
    async with Hub.open(url, options=options) as hub:
        session = await hub.session("s1")
        await session.publish(TurnStarted(turn="t1"))
        for i in range(1, 1000):
            await session.publish_many([delta(str(i))])
        await session.publish_many([delta(str(k)) for k in range(7)])
        before = (await session.state()).to_dict()
        await hub.evict("s1")
        assert hub.open_session("s1") is None and session.closed
        snapshot = await hub.log.load_snapshot("s1")
        assert snapshot is not None and snapshot.at == 1007, "eviction stores a last snapshot"
        reads = hub.log.records_read
        reopened = await hub.session("s1")
        assert reopened is not session
        assert hub.log.records_read - reads == 0, "the reopen read records the snapshot already covers"
        assert (await reopened.state()).to_dict() == before
        assert (await reopened.publish(delta("after"))).seq == 1008

    # A new process: closing the hub stored a last snapshot, so again nothing is replayed.
    async with Hub.open(url, options=options) as hub:
        reads = hub.log.records_read
        session = await hub.session("s1")
        assert hub.log.records_read - reads == 0
        assert session.last_seq == 1008
        assert (await session.state()).to_dict() == fold_records(await hub.log.read("s1")).to_dict()


async def test_reopen_reads_the_tail_after_a_periodic_snapshot(tmp_path: Path) -> None:
    log = WatchedLog(str(tmp_path / "h.db"))
    async with Hub.open(log, options=ChannelOptions(snapshot_every=50)) as hub:
        session = await hub.session("s1")
        for i in range(520):
            await session.publish(delta(str(i)))
        await log.wait_snapshot(500)
        # The file as a crash would leave it (no eviction, no last snapshot): a copy of the
        # database and its WAL, opened by another hub, reads the periodic snapshot and the tail only.
        (tmp_path / "crash").mkdir()
        for suffix in ("", "-wal"):
            shutil.copyfile(tmp_path / f"h.db{suffix}", tmp_path / "crash" / f"h.db{suffix}")
        async with Hub.open(f"sqlite:///{tmp_path / 'crash' / 'h.db'}") as other:
            reads = other.log.records_read
            reopened = await other.session("s1")
            tail = other.log.records_read - reads
            assert 0 < tail <= 70, f"reopening read {tail} records"
            assert reopened.last_seq == 520
            assert (await reopened.state()).to_dict() == fold_records(await hub.log.read("s1")).to_dict()


async def test_idle_sessions_are_evicted_busy_ones_kept() -> None:
    async with Hub.open("memory://", idle_timeout=0) as hub:
        idle = await hub.session("idle")
        await idle.publish(delta("x"))
        busy = await hub.session("busy")
        async with busy.subscribe():
            assert await hub.evict_idle() == ["idle"]
            assert hub.sessions() == ["busy"]
        assert await hub.evict_idle() == ["busy"]


async def test_the_sweeper_evicts_on_its_own() -> None:
    log = WatchedMemoryLog()
    async with Hub.open(log, idle_timeout=0.05) as hub:
        session = await hub.session("s1")
        await session.publish(delta("x"))
        async with asyncio.timeout(5):
            await log.stored.wait()  # eviction stores a last snapshot
        assert hub.open_session("s1") is None
        assert session.closed
        assert (await hub.log.load_snapshot("s1")) is not None


async def test_a_reference_kept_across_eviction_keeps_working() -> None:
    async with Hub.open("memory://") as hub:
        old = await hub.session("s1")
        await old.publish(delta("before"))
        await hub.evict("s1")
        current = await hub.session("s1")
        async with current.subscribe(after=1) as sub:
            record = await old.publish(delta("through the old reference"))
            assert record.seq == 2
            async with asyncio.timeout(5):
                (item,) = await sub.batch()
        assert isinstance(item, Record) and item.seq == 2
        assert (await old.state()).seq == 2
        async with old.subscribe(after=0) as forwarded:
            async with asyncio.timeout(5):
                items = await forwarded.batch()
        assert [i.seq for i in items if isinstance(i, Record)] == [1, 2]


async def test_publish_during_eviction_is_not_lost(tmp_path: Path) -> None:
    async with Hub.open(f"sqlite:///{tmp_path / 'h.db'}") as hub:
        session = await hub.session("s1")
        publishing = [asyncio.create_task(session.publish(delta(str(i)))) for i in range(20)]
        await asyncio.sleep(0)
        await hub.evict("s1")
        await asyncio.gather(*publishing)
        reopened = await hub.session("s1")
        assert reopened.last_seq == 20
        assert (await reopened.state()).seq == 20


async def test_create_session_writes_meta_and_session_created() -> None:
    async with Hub.open("memory://") as hub:
        session, token = await hub.create_session("s1", title="Hello")
        meta = await hub.meta("s1")
        assert meta.title == "Hello" and meta.token_hash and token not in meta.token_hash
        (record,) = await hub.log.read("s1")
        assert record.type == "session.created" and record.seq == 1
        assert (await session.state()).title == "Hello"
        with pytest.raises(SessionExists):
            await hub.create_session("s1")
        results = await asyncio.gather(*(hub.create_session("race") for _ in range(5)), return_exceptions=True)
        assert sum(not isinstance(r, BaseException) for r in results) == 1
        assert all(isinstance(r, SessionExists) for r in results if isinstance(r, BaseException))
        generated, _ = await hub.create_session()
        assert generated.id.startswith("s_")
        with pytest.raises(SessionNotFound):
            await hub.meta("nobody")


async def test_tokens_authorize_forbid_and_rotate() -> None:
    async with Hub.open("memory://") as hub:
        _, token_a = await hub.create_session("a")
        _, token_b = await hub.create_session("b")
        assert (await hub.authorize("a", token_a)).id == "a"
        with pytest.raises(Forbidden):
            await hub.authorize("a", token_b)
        for bad in (None, "", "garbage", "sw1.!!!.x", token_a[:-2] + "xx"):
            with pytest.raises(Unauthorized):
                await hub.authorize("a", bad)
        new = await hub.rotate_token("a")
        assert new != token_a
        with pytest.raises(Unauthorized):
            await hub.authorize("a", token_a)
        assert (await hub.authorize("a", new)).id == "a"
        # The admin token grants every session that exists.
        assert (await hub.authorize("b", "admin-secret", admin_token="admin-secret")).id == "b"
        with pytest.raises(SessionNotFound):
            await hub.authorize("nobody", "admin-secret", admin_token="admin-secret")
        with pytest.raises(Unauthorized):
            await hub.authorize("b", "wrong", admin_token="admin-secret")


async def test_delete_session() -> None:
    async with Hub.open("memory://") as hub:
        session, token = await hub.create_session("s1")
        await session.publish(delta("x"))
        await hub.delete_session("s1")
        assert hub.open_session("s1") is None
        assert await hub.log.bounds("s1") == (0, 0)
        with pytest.raises(Unauthorized):
            await hub.authorize("s1", token)
        with pytest.raises(SessionNotFound):
            await hub.delete_session("s1")


async def test_closing_the_hub_ends_subscriptions(tmp_path: Path) -> None:
    received: list[int] = []
    ended = asyncio.Event()
    async with Hub.open(f"sqlite:///{tmp_path / 'h.db'}") as hub:
        session = await hub.session("s1")
        started = asyncio.Event()

        async def follow() -> None:
            async with session.subscribe() as sub:
                started.set()
                async for item in sub:
                    if isinstance(item, Record):
                        received.append(item.seq)
            ended.set()

        follower = asyncio.create_task(follow())
        await started.wait()
        await session.publish(delta("x"))
    async with asyncio.timeout(5):
        await ended.wait()
        await follower
    assert received in ([], [1])  # the record may or may not have been read before the close
    with pytest.raises(LogClosed):
        await hub.session("s1")
    with pytest.raises(LogClosed):
        await session.publish(delta("late"))


async def test_statistics() -> None:
    async with Hub.open("memory://") as hub:
        session = await hub.session("s1")
        await session.publish_many([delta("a"), delta("b")])
        async with session.subscribe():
            stats = hub.statistics()
        assert stats["sessions_open"] == 1 and stats["subscribers"] == 1
        assert stats["records_appended"] == 2 and stats["appends"] == 1
        assert stats["subscribers_lagging"] == 0


async def test_hub_over_a_log_object() -> None:
    log = open_log("memory://")
    async with Hub.open(log) as hub:
        assert hub.log is log
        await (await hub.session("s1")).publish(delta("x"))
    with pytest.raises(LogClosed):
        await log.read("s1")


async def test_closing_the_hub_ends_a_subscriber_that_is_catching_up(tmp_path: Path) -> None:
    started = asyncio.Event()
    async with Hub.open(f"sqlite:///{tmp_path / 'h.db'}", options=ChannelOptions(ring_records=4, read_page=2)) as hub:
        session = await hub.session("s1")
        await session.publish_many([delta(str(i)) for i in range(300)])

        async def follow() -> list[int]:
            seqs = []
            async with session.subscribe() as sub:
                async for item in sub:
                    started.set()
                    if isinstance(item, Record):
                        seqs.append(item.seq)
            return seqs

        follower = asyncio.create_task(follow())
        async with asyncio.timeout(5):
            await started.wait()
    async with asyncio.timeout(5):
        seqs = await follower  # ends cleanly, whatever it was doing when the log closed
    assert seqs == list(range(1, len(seqs) + 1))


async def test_an_unreadable_snapshot_falls_back_to_folding_the_log() -> None:
    async with Hub.open("memory://") as hub:
        session = await hub.session("s1")
        await session.publish(TurnStarted(turn="t1"))
        await session.publish_many([delta(str(i)) for i in range(4)])
        await hub.evict("s1")
        await hub.log.save_snapshot("s1", Snapshot(5, b'{"seq": "not a state"'))
        reopened = await hub.session("s1")
        assert (await reopened.state()).to_dict() == fold_records(await hub.log.read("s1")).to_dict()
        assert reopened.last_seq == 5


class GatedLog(MemoryLog):
    """A memory log whose snapshot loads wait for a gate (so an open can be caught mid-way)."""

    def __init__(self) -> None:
        super().__init__()
        self.loading = asyncio.Event()
        self.gate = asyncio.Event()

    async def load_snapshot(self, session: str) -> Snapshot | None:
        self.loading.set()
        await self.gate.wait()
        return await super().load_snapshot(session)


async def test_a_cancelled_opener_does_not_cancel_the_others_waiting_for_it() -> None:
    log = GatedLog()
    async with Hub.open(log) as hub:
        opener = asyncio.ensure_future(hub.session("s1"))
        async with asyncio.timeout(5):
            await log.loading.wait()
        waiter = asyncio.ensure_future(hub.session("s1"))
        await asyncio.sleep(0)  # one step: the waiter now waits on the opener's open
        assert not waiter.done()
        opener.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opener
        log.gate.set()
        async with asyncio.timeout(5):
            session = await waiter  # it opened the session itself
        assert not session.closed and hub.open_session("s1") is session
        assert await hub.session("s1") is session


class _SlowMetaLog(MemoryLog):
    """A memory log whose metadata reads give the loop a turn, as a real store's do."""

    async def get_meta(self, session: str) -> SessionMeta | None:
        meta = await super().get_meta(session)
        await asyncio.sleep(0)  # the value read may be stale by the time the caller has it
        return meta


async def test_metadata_changes_never_lose_each_other() -> None:
    # Token rotation and other read-modify-writes of a session's metadata are serialized.
    async with Hub.open(_SlowMetaLog()) as hub:
        session, _ = await hub.create_session("s_meta")

        def mark(i: int) -> Callable[[SessionMeta], None]:
            def change(meta: SessionMeta) -> None:
                meta.data[f"k{i}"] = i

            return change

        tokens = await asyncio.gather(
            *[hub.update_meta(session.id, mark(i)) for i in range(20)], hub.rotate_token(session.id)
        )
        meta = await hub.meta(session.id)
        assert {f"k{i}" for i in range(20)} <= meta.data.keys()
        assert (await hub.authorize(session.id, tokens[-1])).id == session.id
        assert await hub.update_meta("s_none", mark(0)) is None
