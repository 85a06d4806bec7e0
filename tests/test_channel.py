"""One session's channel: publish, replay-then-live hand-over, lag, snapshots, delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from conftest import WatchedLog, take_records
from sessionwire import ChannelOptions, Control, Hub, InvalidEvent, Record, SessionState, fold_records
from sessionwire.backends import Fence, Snapshot
from sessionwire.backends.memory import MemoryLog
from sessionwire.errors import CursorAhead, LogClosed
from sessionwire.events import Event, MessageDelta, ToolStarted, TurnStarted
from sessionwire.record import OpaqueEvent


def delta(text: str, message: str = "m1") -> MessageDelta:
    return MessageDelta(message=message, part=0, text=text)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with Hub.open(f"sqlite:///{tmp_path / 'hub.db'}") as opened:
        yield opened


async def test_publish_dict_and_typed_event(hub: Hub) -> None:
    session = await hub.session("s1")
    first = await session.publish(TurnStarted(turn="t1"))
    second = await session.publish({"type": "message.delta", "turn": "t1", "message": "m1", "part": 0, "text": "Hi"})
    assert (first.seq, second.seq) == (1, 2)
    assert second.to_dict()["text"] == "Hi" and second.to_dict()["session"] == "s1"
    records = await session.publish_many(
        [delta("a"), {"type": "message.delta", "message": "m1", "part": 0, "text": "b"}]
    )
    assert [r.seq for r in records] == [3, 4]
    assert await session.publish_many([]) == []
    assert [r.seq for r in await hub.log.read("s1")] == [1, 2, 3, 4]
    state = await session.state()
    assert state.seq == 4
    assert state.messages["m1"].parts[0].text == "Hiab"  # type: ignore[union-attr]


async def test_invalid_event_appends_nothing(hub: Hub) -> None:
    session = await hub.session("s1")
    await session.publish(delta("ok"))
    with pytest.raises(InvalidEvent):
        await session.publish({"type": "no.such.type"})
    with pytest.raises(InvalidEvent):
        await session.publish({"type": "message.delta", "message": "m1"})  # part and text missing
    with pytest.raises(InvalidEvent):
        await session.publish_many([delta("fine"), {"type": "turn.started"}])  # the batch is all or nothing
    with pytest.raises(InvalidEvent):
        await session.publish("not an event")  # type: ignore[arg-type]
    assert await hub.log.bounds("s1") == (1, 1)
    assert session.last_seq == 1
    assert (await session.publish(delta("next"))).seq == 2


async def test_replay_then_live_hand_over_has_no_gap_or_duplicate(tmp_path: Path) -> None:
    # A ring much smaller than the backlog: the subscriber must replay from the log, then go live.
    options = ChannelOptions(ring_records=16, read_page=7, max_batch=5)
    async with Hub.open(f"sqlite:///{tmp_path / 'h.db'}", options=options) as hub:
        session = await hub.session("s1")
        for i in range(60):
            await session.publish(delta(str(i)))

        async def produce() -> None:
            for i in range(60, 200):
                await session.publish(delta(str(i)))
                if i % 16 == 0:
                    await asyncio.sleep(0)

        async with session.subscribe(after=10) as sub:
            producer = asyncio.create_task(produce())
            records, items = await take_records(sub, 189)
            await producer
        assert [r.seq for r in records] == list(range(11, 200))
        assert [r.event.text for r in records] == [str(i) for i in range(10, 199)]  # type: ignore[union-attr]
        # A replay at subscribe time is not lagging: no control frame at all.
        assert all(isinstance(i, Record) for i in items)


async def test_subscribe_from_the_end_gets_only_new_records(hub: Hub) -> None:
    session = await hub.session("s1")
    await session.publish_many([delta("old")] * 3)
    async with session.subscribe(after=3) as sub:
        waiting = asyncio.create_task(sub.batch())
        await asyncio.sleep(0)
        assert not waiting.done()
        await session.publish(delta("new"))
        async with asyncio.timeout(5):
            (item,) = await waiting
        assert isinstance(item, Record) and item.seq == 4


async def test_one_wake_serves_a_whole_batch(hub: Hub) -> None:
    session = await hub.session("s1")
    async with session.subscribe() as sub:
        waiting = asyncio.create_task(sub.batch())
        await asyncio.sleep(0)
        await session.publish_many([delta(str(i)) for i in range(10)])
        async with asyncio.timeout(5):
            batch = await waiting
        assert [i.seq for i in batch if isinstance(i, Record)] == list(range(1, 11))


async def test_stalled_subscriber_lags_catches_up_and_loses_nothing() -> None:
    options = ChannelOptions(ring_records=8, lag_records=4, read_page=3, max_batch=4)
    async with Hub.open("memory://", options=options) as hub:
        session = await hub.session("s1")
        async with session.subscribe() as sub:
            await session.publish(delta("0"))
            live, _ = await take_records(sub, 1)
            # Stall: the publisher goes on without waiting for this subscriber.
            async with asyncio.timeout(5):
                for i in range(1, 40):
                    await session.publish(delta(str(i)))
            # Nothing piles up for the stalled subscriber: the ring keeps its bound.
            assert session.buffered == 8
            records, items = await take_records(sub, 39)
            assert session.lagging == 0
        assert [r.seq for r in live + records] == list(range(1, 41))
        controls = [i.control for i in items if isinstance(i, Control)]
        assert controls == ["lagging", "caught_up"]
        assert isinstance(items[0], Control) and items[0].control == "lagging"
        # caught_up comes before the first record served live again, never at the end of the log read.
        index = next(k for k, i in enumerate(items) if isinstance(i, Control) and i.control == "caught_up")
        assert all(isinstance(i, Record) for i in items[index + 1 :])


async def test_lagging_by_bytes() -> None:
    # A ring bounded by bytes: a big backlog of big records pushes the cursor out of it.
    options = ChannelOptions(ring_records=1000, ring_bytes=2000, lag_records=1000)
    async with Hub.open("memory://", options=options) as hub:
        session = await hub.session("s1")
        async with session.subscribe() as sub:
            await session.publish(delta("x"))
            await take_records(sub, 1)
            for _ in range(30):
                await session.publish(delta("y" * 200))
            records, items = await take_records(sub, 30)
        assert [r.seq for r in records] == list(range(2, 32))
        assert [i.control for i in items if isinstance(i, Control)] == ["lagging", "caught_up"]


async def test_snapshot_frame_when_the_log_no_longer_holds_the_cursor(tmp_path: Path) -> None:
    options = ChannelOptions(ring_records=4, lag_records=4, snapshot_every=5)
    async with Hub.open(f"sqlite:///{tmp_path / 'h.db'}?retain=3", options=options) as hub:
        session = await hub.session("s1")
        async with session.subscribe() as stalled:
            await session.publish(TurnStarted(turn="t1"))
            await take_records(stalled, 1)
            for i in range(29):
                await session.publish(delta(str(i)))
            await session.save_snapshot()
            first, _ = await hub.log.bounds("s1")
            assert first > 2, "retention dropped nothing"
            expected_state = (await session.state()).to_dict()

            # A new subscriber from 0 and the stalled one both get the state, then the tail.
            async with session.subscribe(after=0) as fresh:
                items = await fresh.batch()
                assert isinstance(items[0], Control) and items[0].control == "snapshot"
                assert items[0].at == 30 and items[0].state == expected_state
                assert not hasattr(items[0], "seq")
                assert items[1:] == []

                _, items = await take_records(stalled, 0)
                async with asyncio.timeout(5):
                    while not any(isinstance(i, Control) and i.control == "caught_up" for i in items):
                        items += await stalled.batch()
                controls = [i for i in items if isinstance(i, Control)]
                assert [c.control for c in controls] == ["lagging", "snapshot", "caught_up"]
                assert controls[1].at == 30 and controls[1].state == expected_state
                assert not any(isinstance(i, Record) for i in items)

                await session.publish(delta("tail"))
                for sub in (fresh, stalled):
                    records, items = await take_records(sub, 1)
                    assert [r.seq for r in records] == [31] and items == records


async def test_snapshot_stored_every_n_records(tmp_path: Path) -> None:
    log = WatchedLog(str(tmp_path / "h.db"))
    async with Hub.open(log, options=ChannelOptions(snapshot_every=10)) as hub:
        session = await hub.session("s1")
        for i in range(25):
            await session.publish(delta(str(i)))
        assert await log.wait_snapshot(20) in (20, 21)
        assert log.snapshots[0] in (10, 11)
        snapshot = await hub.log.load_snapshot("s1")
        assert snapshot is not None
        stored = SessionState.from_json(snapshot.state)
        assert stored.seq == snapshot.at
        assert stored.to_dict() == fold_records(await hub.log.read("s1", limit=snapshot.at)).to_dict()


async def test_a_large_state_is_stored_less_often(tmp_path: Path) -> None:
    # A snapshot costs its state's size: with about 40 KB of state, one every ~40 records, not 10.
    log = WatchedLog(str(tmp_path / "h.db"))
    async with Hub.open(log, options=ChannelOptions(snapshot_every=10)) as hub:
        session = await hub.session("s1")
        await session.publish(delta("x" * 40_000))
        for i in range(200):
            await session.publish(delta(str(i)))
        await log.wait_snapshot(150)
        gaps = [b - a for a, b in zip(log.snapshots, log.snapshots[1:])]
        assert log.snapshots[0] in (10, 11) and gaps and all(39 <= gap <= 41 for gap in gaps), log.snapshots
        snapshot = await hub.log.load_snapshot("s1")
        assert snapshot is not None
        assert (
            SessionState.from_json(snapshot.state).to_dict()
            == fold_records(await hub.log.read("s1", limit=snapshot.at)).to_dict()
        )
    # Reopened from that snapshot, it waits as long again before the next one.
    log = WatchedLog(str(tmp_path / "h.db"))
    async with Hub.open(log, options=ChannelOptions(snapshot_every=10)) as hub:
        session = await hub.session("s1")
        start = session.last_seq
        for i in range(60):
            await session.publish(delta(str(i)))
        assert (await log.wait_snapshot(start + 39)) - start in (39, 40, 41), (start, log.snapshots)


async def test_a_snapshot_that_fails_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    class FailingSnapshots(MemoryLog):
        full = True
        tried = asyncio.Event()

        async def save_snapshot(self, session: str, snapshot: Snapshot) -> None:
            if self.full:
                self.tried.set()
                raise OSError("disk full")
            await super().save_snapshot(session, snapshot)

    log = FailingSnapshots()
    async with Hub.open(log, options=ChannelOptions(snapshot_every=3)) as hub:
        session = await hub.session("s1")
        for i in range(4):
            await session.publish(delta(str(i)))
        await asyncio.wait_for(log.tried.wait(), 5)
        log.full = False  # the last snapshot, at close (which waits for the failed one), is stored
    failed = "session s1: test_a_snapshot_that_fails_is_logged.<locals>.FailingSnapshots.save_snapshot failed"
    assert f"{failed}: OSError('disk full')" in caplog.text


async def test_cursor_ahead(hub: Hub) -> None:
    session = await hub.session("s1")
    await session.publish_many([delta("a"), delta("b")])
    with pytest.raises(CursorAhead) as caught:
        async with session.subscribe(after=3):
            pass
    assert caught.value.last == 2 and caught.value.after == 3
    with pytest.raises(ValueError):
        async with session.subscribe(after=-1):
            pass
    async with session.subscribe(after=2) as sub:
        assert session.subscribers == 1
        assert sub.cursor == 2
    assert session.subscribers == 0


async def test_cancelled_publisher_leaves_no_gap(hub: Hub) -> None:
    session = await hub.session("s1")
    async with session.subscribe() as sub:
        task = asyncio.create_task(session.publish(delta("cancelled mid-append")))
        await asyncio.sleep(0)  # the append is queued in the SQLite writer
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        after = await session.publish(delta("next"))
        assert after.seq == 2
        records, _ = await take_records(sub, 2)
    assert [r.seq for r in records] == [1, 2]
    assert records[0].event.text == "cancelled mid-append"  # type: ignore[union-attr]
    assert [r.seq for r in await hub.log.read("s1")] == [1, 2]


async def test_deliver_reorders_and_drops_duplicates(hub: Hub) -> None:
    session = await hub.session("s1")
    records = [Record("s1", seq, 1000 + seq, delta(str(seq))) for seq in range(1, 6)]
    async with session.subscribe() as sub:
        session.deliver([records[2], records[0]])
        assert session.last_seq == 1 and session.gaps == [3]
        session.deliver([records[1], records[1], records[0]])
        assert session.last_seq == 3 and session.gaps == []
        session.deliver([records[4], records[3], records[2]])
        got, _ = await take_records(sub, 5)
    assert [r.seq for r in got] == [1, 2, 3, 4, 5]
    assert (await session.state()).seq == 5
    with pytest.raises(ValueError):
        session.deliver([Record("s2", 6, 1, delta("x"))])


async def test_gap_left_by_another_writer_is_filled_from_the_log(hub: Hub) -> None:
    session = await hub.session("s1")
    await session.publish(delta("mine"))
    async with session.subscribe() as sub:
        # Another process appends to the same log; this channel only hears of its own append.
        await hub.log.append("s1", [delta("theirs 1"), delta("theirs 2")])
        own = await session.publish(delta("mine again"))
        assert own.seq == 4
        records, _ = await take_records(sub, 4)
    assert [r.seq for r in records] == [1, 2, 3, 4]
    assert session.gaps == []
    assert (await session.state()).to_dict() == fold_records(await hub.log.read("s1")).to_dict()


async def test_state_is_incremental_and_equals_the_fold(hub: Hub) -> None:
    session = await hub.session("s1")
    await session.publish(TurnStarted(turn="t1"))
    for i in range(20):
        await session.publish(delta(str(i), message=f"m{i % 3}"))
    reads = hub.log.records_read
    state = await session.state()
    assert hub.log.records_read == reads, "state() read the log"
    assert state.to_dict() == fold_records(await hub.log.read("s1")).to_dict()
    state.seq = 999  # a copy, nested parts too: changing it changes nothing in the channel
    state.messages["m0"].parts.clear()
    state.turns["t1"].messages.append("m_x")
    again = await session.state()
    assert again.seq == 21 and again.messages["m0"].parts and "m_x" not in again.turns["t1"].messages
    # The channel's text grows on, the copy's does not.
    before = again.messages["m0"].parts[0].text  # type: ignore[union-attr]
    await session.publish(delta("more", message="m0"))
    assert again.messages["m0"].parts[0].text == before  # type: ignore[union-attr]
    assert (await session.state()).messages["m0"].parts[0].text == before + "more"  # type: ignore[union-attr]


async def test_closing_the_session_ends_subscriptions(hub: Hub) -> None:
    session = await hub.session("s1")
    async with session.subscribe() as sub:
        reader = asyncio.create_task(sub.batch())
        await asyncio.sleep(0)
        await session.aclose()
        async with asyncio.timeout(5):
            assert await reader == []
        assert [i async for i in sub] == []
    assert session.closed


async def test_closed_session_without_hub_refuses_publish(tmp_path: Path) -> None:
    from sessionwire.backends import open_log
    from sessionwire.channel import Session
    from sessionwire.state import SessionState

    log = open_log("memory://")
    session = Session("s1", log, SessionState(), ChannelOptions())
    await session.publish(delta("a"))
    await session.aclose()
    with pytest.raises(LogClosed):
        await session.publish(delta("b"))
    assert (await log.load_snapshot("s1")) is not None, "closing stores a last snapshot"
    await log.aclose()


def test_channel_options_are_checked() -> None:
    with pytest.raises(ValueError):
        ChannelOptions(ring_records=0)


class YieldingLog(MemoryLog):
    """A memory log whose append gives the loop a turn first, like a network backend."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail

    async def append(
        self, session: str, events: Sequence[Event], fence: Fence | None = None, external: bool = False
    ) -> list[Record]:
        await asyncio.sleep(0)  # a bare yield
        await asyncio.sleep(0.001)  # a timer future
        if self.fail:
            raise OSError("the backend went away")
        return await super().append(session, events, fence, external)

    def submit(
        self, session: str, events: Sequence[Event], fence: Fence | None = None, known: int = 0, external: bool = False
    ) -> asyncio.Future[list[Record]]:
        return asyncio.ensure_future(
            self.append(session, events, fence, external)
        )  # a log that waits, as a network one does


async def test_publish_through_a_log_that_waits() -> None:
    async with Hub.open(YieldingLog()) as hub:
        session = await hub.session("s1")
        async with session.subscribe() as sub:
            results = await asyncio.gather(*(session.publish(delta(str(i))) for i in range(20)))
            assert sorted(r.seq for r in results) == list(range(1, 21))
            records, _ = await take_records(sub, 20)
        assert [r.seq for r in records] == list(range(1, 21))
        assert session.gaps == [] and session.idle


async def test_a_failed_append_raises_and_delivers_nothing() -> None:
    log = YieldingLog(fail=True)
    async with Hub.open(log) as hub:
        session = await hub.session("s1")
        with pytest.raises(OSError, match="went away"):
            await session.publish(delta("x"))
        assert session.last_seq == 0 and session.idle
        log.fail = False
        assert (await session.publish(delta("y"))).seq == 1


def test_ring_keeps_the_newest_records_within_its_bounds() -> None:
    from sessionwire.ring import Ring

    ring = Ring(size=4, max_bytes=10_000, last=10)
    assert (ring.first, ring.last) == (11, 10)
    for seq in range(11, 21):
        ring.push(Record("s1", seq, 0, delta(str(seq))))
        assert ring.last == seq and ring.last - ring.first + 1 == min(4, seq - 10)
    assert [r.seq for r in ring.take(17, 10)] == [17, 18, 19, 20]
    assert [r.seq for r in ring.take(18, 2)] == [18, 19]  # wraps around the end of the list
    size = len(Record("s1", 9, 0, delta("x" * 100)).raw)  # seqs 1..9: one digit each
    small = Ring(size=100, max_bytes=3 * size, last=0)
    for seq in range(1, 10):
        small.push(Record("s1", seq, 0, delta("x" * 100)))
    assert (small.first, small.last) == (7, 9) and small.bytes == 3 * size
    small.reset(50)
    assert (small.first, small.last, small.bytes) == (51, 50, 0)


async def test_an_invalid_typed_event_appends_nothing(hub: Hub) -> None:
    # A typed event is built without checks; were it appended, no reader could decode it.
    session = await hub.session("s1")
    await session.publish(delta("ok"))
    with pytest.raises(InvalidEvent, match=r"\$\.call"):
        await session.publish(ToolStarted(message="m1", part=1, call="c" * 201, name="search"))
    with pytest.raises(InvalidEvent, match=r"\$\.part"):
        await session.publish_many([delta("fine"), MessageDelta(message="m1", part=10_001, text="x")])
    assert await hub.log.bounds("s1") == (1, 1)
    assert session.last_seq == 1


async def test_a_stored_record_that_does_not_validate_is_passed_through(tmp_path: Path) -> None:
    # As written by an older version (or appended around the checks): the session must stay
    # readable after a reopen: replay, subscribe and state go on, the fold skips the record.
    url = f"sqlite:///{tmp_path / 'poison.db'}"
    async with Hub.open(url) as hub:
        session = await hub.session("s1")
        await session.publish(TurnStarted(turn="t1"))
        await hub.log.append("s1", [ToolStarted(message="m1", part=0, call="c" * 201, name="t")])
        await hub.log.append("s1", [delta("after")])
    async with Hub.open(url) as hub:
        session = await hub.session("s1")
        assert session.last_seq == 3
        async with session.subscribe(after=0) as sub:
            records, _ = await take_records(sub, 3)
        assert [r.seq for r in records] == [1, 2, 3]
        assert isinstance(records[1].event, OpaqueEvent) and records[1].type == "tool.started"
        assert records[1].raw == (await hub.log.read("s1", 1, limit=1))[0].raw
        state = await session.state()
        assert state.seq == 3 and list(state.turns) == ["t1"]
        assert state.messages["m1"].parts[0].text == "after"  # type: ignore[union-attr]
        assert state.to_dict() == fold_records(await hub.log.read("s1")).to_dict()
        assert (await session.publish(delta("!"))).seq == 4


async def test_timed_out_waits_leave_no_waiter_behind() -> None:
    # An SSE client calls next_batch(heartbeat) forever on an idle session: nothing may pile up.
    async with Hub.open("memory://") as hub:
        session = await hub.session("s1")
        await session.publish(delta("x"))
        async with session.subscribe(after=1) as sub, session.subscribe(after=1) as other:
            waiting = asyncio.ensure_future(other.batch())  # a waiter that stays
            for _ in range(200):
                assert await sub.next_batch(0) == []
            assert session.waiting <= 1  # only the other subscriber's
            await session.publish(delta("y"))
            async with asyncio.timeout(5):
                assert [r.seq for r in await waiting if isinstance(r, Record)] == [2]
            assert [r.seq for r in await sub.next_batch(0) if isinstance(r, Record)] == [2]
            assert session.waiting == 0


async def test_closed_tells_a_timeout_from_the_end() -> None:
    async with Hub.open("memory://") as hub:
        session = await hub.session("s1")
        await session.publish(delta("x"))
        async with session.subscribe(after=1) as sub:
            assert await sub.next_batch(0) == [] and not sub.closed  # timed out
            await hub.evict("s1")
            assert await sub.next_batch(5) == [] and sub.closed  # ended
            assert await sub.batch() == []


async def test_next_batch_times_out_on_one_timer_that_moves_with_its_deadline() -> None:
    async with Hub.open("memory://") as hub:
        session = await hub.session("s1")
        async with session.subscribe(after=0) as sub:
            loop = asyncio.get_running_loop()
            began = loop.time()
            assert await sub.next_batch(0.05) == [] and not sub.closed
            assert loop.time() - began >= 0.045  # not early
            # Batches that keep coming move the deadline: the wait that follows them times out in full.
            for i in range(5):
                waiting = asyncio.ensure_future(sub.next_batch(0.2))
                await asyncio.sleep(0.02)
                await session.publish(delta(str(i)))
                assert [r.type for r in await waiting] == ["message.delta"]
            began = loop.time()
            assert await sub.next_batch(0.1) == []
            assert 0.09 <= loop.time() - began < 0.5


async def test_a_timeout_of_next_batch_never_ends_an_iteration_that_follows() -> None:
    # next_batch(timeout) arms the subscription's timer; a plain wait afterwards (async for,
    # batch()) must outlive that deadline and still get the next record, not an early end.
    async with Hub.open("memory://") as hub:
        session = await hub.session("s1")
        await session.publish(delta("x"))
        async with session.subscribe(after=0) as sub:
            assert [r.seq for r in await sub.next_batch(0.05) if isinstance(r, Record)] == [1]
            publish = lambda: asyncio.ensure_future(session.publish(delta("y")))  # noqa: E731
            later = asyncio.get_running_loop().call_later(0.15, publish)
            try:
                async with asyncio.timeout(5):
                    async for item in sub:
                        assert isinstance(item, Record) and item.seq == 2
                        break
                    else:
                        raise AssertionError("the iteration ended while the session is open")
            finally:
                later.cancel()
            assert not sub.closed


async def test_an_iteration_whose_wait_timed_out_goes_on() -> None:
    # A reader may give up waiting for the next item (a timeout) and ask again later: nothing ends.
    async with Hub.open("memory://") as hub:
        session = await hub.session("s_timeout")
        async with session.subscribe(after=0) as sub:
            items = aiter(sub)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(items), 0.01)
            await session.publish({"type": "status", "text": "later"})
            item = await asyncio.wait_for(anext(items), 5)
            assert isinstance(item, Record) and item.seq == 1
