"""Property test: readers that run while publishers publish, over a log that yields at random.

The log's append, read and snapshot store give the loop a turn a random number of
times, so appends complete out of order and reads interleave with deliveries.
Publishers are cancelled at random (their appends go on); readers join at random
cursors, give up waits at random (cancelled batches, ``next_batch(0)``) and stall.
Whatever the schedule, each reader gets exactly the log's records after its cursor,
once each, in order (a jump only right after a ``snapshot`` frame, when the log no
longer holds what it needs).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionwire import ChannelOptions, Control, Hub, Record
from sessionwire.backends import Fence, Snapshot
from sessionwire.backends.memory import MemoryLog
from sessionwire.channel import Session
from sessionwire.events import Event, MessageDelta

OPTIONS = ChannelOptions(ring_records=5, ring_bytes=100_000, lag_records=4, snapshot_every=6, read_page=3, max_batch=3)


class YieldingLog(MemoryLog):
    """A memory log that gives the loop 0-3 turns in each append, read and snapshot store.

    It keeps every record it appended (whatever it drops later) and says when no append is under way.
    """

    def __init__(self, rnd: random.Random, retain: int | None) -> None:
        super().__init__(retain=retain)
        self.rnd = rnd
        self.appended: dict[int, Record] = {}
        self.in_flight = 0
        self.quiet = asyncio.Event()

    async def _turns(self) -> None:
        for _ in range(self.rnd.randint(0, 3)):
            await asyncio.sleep(0)

    async def append(
        self, session: str, events: Sequence[Event], fence: Fence | None = None, external: bool = False
    ) -> list[Record]:
        self.in_flight += 1
        self.quiet.clear()
        try:
            await self._turns()
            records = await super().append(session, events, fence, external)
            self.appended.update((r.seq, r) for r in records)
            return records
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.quiet.set()

    def submit(
        self, session: str, events: Sequence[Event], fence: Fence | None = None, known: int = 0, external: bool = False
    ) -> asyncio.Future[list[Record]]:
        return asyncio.ensure_future(
            self.append(session, events, fence, external)
        )  # a log that waits, as a network one does

    async def read(self, session: str, after: int = 0, limit: int | None = None) -> list[Record]:
        await self._turns()
        return await super().read(session, after, limit)

    async def save_snapshot(self, session: str, snapshot: Snapshot) -> None:
        await self._turns()
        await super().save_snapshot(session, snapshot)


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def produce(session: Session, rnd: random.Random, name: str, batches: int) -> None:
    for i in range(batches):
        events = [MessageDelta(message=name, part=0, text=f"{i}.{k} ") for k in range(rnd.randint(1, 3))]
        publish = asyncio.ensure_future(session.publish_many(events))
        if rnd.random() < 0.15:
            await asyncio.sleep(0)
            publish.cancel()  # the caller gives up; its append must still land once, with no gap
        with contextlib.suppress(asyncio.CancelledError):
            await publish
        if rnd.random() < 0.5:
            await asyncio.sleep(0)


async def read(session: Session, rnd: random.Random, log: YieldingLog, target: asyncio.Future[int]) -> int:
    """Read until the last seq (known once the publishers are done); check every item; return the cursor."""
    for _ in range(rnd.randint(0, 20)):
        await asyncio.sleep(0)
    start = cursor = rnd.randint(0, session.last_seq)
    async with session.subscribe(after=start) as sub:
        while not (target.done() and cursor >= target.result()):
            if rnd.random() < 0.3:
                batch = await sub.next_batch(0)
            else:
                get = asyncio.ensure_future(sub.batch())
                # Given up after a few loop turns, at random, or once the publishers are done.
                never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                give_up = asyncio.ensure_future(turns(rnd.randint(1, 30))) if rnd.random() < 0.3 else never
                await asyncio.wait({get, target, give_up}, return_when=asyncio.FIRST_COMPLETED)
                give_up.cancel()
                if not get.done():
                    get.cancel()  # a wait given up: nothing may be lost or repeated for it
                with contextlib.suppress(asyncio.CancelledError):
                    batch = await get
                if get.cancelled():
                    continue
            assert batch or not sub.closed
            for item in batch:
                if isinstance(item, Control):
                    if item.control == "snapshot":
                        assert item.at is not None and item.at >= cursor, f"snapshot back to {item.at} from {cursor}"
                        cursor = item.at
                    continue
                assert item.seq == cursor + 1, f"reader from {start}: expected {cursor + 1}, got {item.seq}"
                assert item.raw == log.appended[item.seq].raw
                cursor = item.seq
            if rnd.random() < 0.2:
                for _ in range(rnd.randint(1, 10)):
                    await asyncio.sleep(0)
    return cursor


async def scenario(seed: int, retain: int | None, readers: int, batches: int) -> None:
    rnd = random.Random(seed)
    log = YieldingLog(rnd, retain)
    async with Hub.open(log, options=OPTIONS) as hub:
        session = await hub.session("s")
        target: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        tasks = [asyncio.ensure_future(read(session, rnd, log, target)) for _ in range(readers)]
        async with asyncio.timeout(30):
            await asyncio.gather(*(produce(session, rnd, f"m{p}", batches) for p in range(3)))
            await log.quiet.wait()  # cancelled publishers' appends too
            _, last = await log.bounds("s")
            assert sorted(log.appended) == list(range(1, last + 1))
            target.set_result(last)
            cursors = await asyncio.gather(*tasks)
        assert cursors == [last] * readers
        assert session.last_seq == last and not session.gaps


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    retain=st.sampled_from([None, None, 2, 5]),
    readers=st.integers(1, 6),
    batches=st.integers(5, 25),
)
def test_concurrent_readers_get_every_record_once_in_order(
    seed: int, retain: int | None, readers: int, batches: int
) -> None:
    asyncio.run(scenario(seed, retain, readers, batches))
