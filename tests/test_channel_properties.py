"""Property tests: whatever the schedule, every subscriber gets exactly the log's records after its cursor.

Several producers share one session (a turn and two jobs), subscribers join at random
cursors, read a little, stall, resume and leave, with a tiny ring and lag bound so
that lagging, catching up from the log and snapshot frames really happen.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sessionwire import ChannelOptions, Control, Hub, Record, fold_records
from sessionwire.channel import Session, Subscription
from sessionwire.events import Event, JobProgress, JobStarted, MessageDelta, TurnStarted

PRODUCERS = ("turn", "job1", "job2")

publish_op = st.tuples(st.just("publish"), st.sampled_from(PRODUCERS), st.integers(1, 8))
burst_op = st.tuples(st.just("burst"), st.integers(1, 3), st.integers(1, 4))
join_op = st.tuples(st.just("join"), st.floats(0, 1), st.just(0))
read_op = st.tuples(st.just("read"), st.integers(0, 7), st.integers(1, 2))
leave_op = st.tuples(st.just("leave"), st.integers(0, 7), st.just(0))
state_op = st.tuples(st.just("state"), st.just(0), st.just(0))
schedules = st.lists(
    st.one_of(publish_op, publish_op, burst_op, join_op, join_op, read_op, read_op, read_op, leave_op, state_op),
    min_size=15,
    max_size=60,
)

SMALL = ChannelOptions(ring_records=6, ring_bytes=4096, lag_records=4, snapshot_every=7, read_page=3, max_batch=4)


class Producer:
    """One scope of work (the turn or a job) publishing into the session."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    def events(self, n: int) -> list[Event]:
        out: list[Event] = []
        for _ in range(n):
            if self.count == 0:
                if self.name == "turn":
                    out.append(TurnStarted(turn="t1"))
                else:
                    out.append(JobStarted(job=self.name, title=f"{self.name} title"))
            elif self.name != "turn" and self.count % 3 == 0:
                out.append(JobProgress(job=self.name, done=self.count))
            elif self.name == "turn":
                out.append(MessageDelta(turn="t1", message="m-turn", part=0, text=f"t{self.count} "))
            else:
                out.append(MessageDelta(job=self.name, message=f"m-{self.name}", part=0, text=f"{self.count} "))
            self.count += 1
        return out


@dataclass
class Reader:
    """A subscriber: its starting cursor and everything it received."""

    start: int
    sub: Subscription
    exit: object
    items: list[Record | Control] = field(default_factory=list)


def check_items(reader: Reader, published: dict[int, Record], last: int, snapshots_allowed: bool) -> None:
    """Records exactly once, in order, from the cursor to ``last``; a gap only right after a snapshot frame."""
    cursor = reader.start
    lagging = False
    for item in reader.items:
        if isinstance(item, Control):
            assert item.session == reader.sub.session
            if item.control == "lagging":
                assert not lagging, "lagging twice without caught_up"
                lagging = True
            elif item.control == "caught_up":
                assert lagging, "caught_up without lagging"
                lagging = False
            elif item.control == "snapshot":
                assert snapshots_allowed, "a snapshot frame though the log keeps everything"
                assert item.at is not None and item.at >= cursor
                assert item.state is not None and item.state["seq"] == item.at
                assert item.state == fold_records(published[s] for s in range(1, item.at + 1)).to_dict()
                cursor = item.at
            continue
        assert item.seq == cursor + 1, f"expected seq {cursor + 1}, got {item.seq}"
        assert item.raw == published[item.seq].raw
        cursor = item.seq
    assert cursor == last, f"reader from {reader.start} stopped at {cursor}, the log is at {last}"


async def drain(reader: Reader, session: Session) -> None:
    sub = reader.sub
    async with asyncio.timeout(10):
        while sub.cursor < session.last_seq or sub.lagging or sub.pending:
            reader.items.extend(await sub.batch())


async def run_schedule(url: str, schedule: list[tuple[str, object, object]], retention: bool) -> None:
    async with Hub.open(url, options=SMALL) as hub:
        session = await hub.session("s1")
        producers = {name: Producer(name) for name in PRODUCERS}
        published: dict[int, Record] = {}
        readers: list[Reader] = []
        done: list[Reader] = []

        async def publish(name: str, n: int) -> None:
            records = await session.publish_many(producers[name].events(n))
            seqs = [r.seq for r in records]
            assert seqs == list(range(seqs[0], seqs[0] + n)), "a batch was split"
            for record in records:
                assert record.seq not in published
                published[record.seq] = record

        for op, a, b in schedule:
            if op == "publish":
                await publish(str(a), int(b))  # type: ignore[call-overload]
            elif op == "burst":
                # The producers publish at once: their appends interleave in the log.
                await asyncio.gather(*(publish(name, int(b)) for name in PRODUCERS[: int(a)]))  # type: ignore[call-overload]
            elif op == "join":
                start = int(float(a) * session.last_seq)  # type: ignore[arg-type]
                cm = session.subscribe(after=start)
                readers.append(Reader(start, await cm.__aenter__(), cm))
            elif op == "read" and readers:
                reader = readers[int(a) % len(readers)]  # type: ignore[call-overload]
                for _ in range(int(b)):  # type: ignore[call-overload]
                    sub = reader.sub
                    if sub.cursor < session.last_seq or sub.lagging or sub.pending:
                        async with asyncio.timeout(10):
                            reader.items.extend(await sub.batch())
            elif op == "leave" and readers:
                reader = readers.pop(int(a) % len(readers))  # type: ignore[call-overload]
                await drain(reader, session)
                await reader.exit.__aexit__(None, None, None)  # type: ignore[attr-defined]
                done.append(reader)
            elif op == "state":
                state = await session.state()
                assert state.seq == session.last_seq
                assert state.to_dict() == fold_records(published[s] for s in sorted(published)).to_dict()

        last = session.last_seq
        assert sorted(published) == list(range(1, last + 1))
        if not retention:
            assert [r.raw for r in await hub.log.read("s1")] == [published[s].raw for s in range(1, last + 1)]
        for reader in readers:
            await drain(reader, session)
            await reader.exit.__aexit__(None, None, None)  # type: ignore[attr-defined]
        for reader in done + readers:
            for item in reader.items:
                if isinstance(item, Control):
                    event(f"control frame: {item.control}")
            check_items(reader, published, last if reader in readers else reader.sub.cursor, retention)
            if reader in done:
                # A reader that left early saw exactly the log's records up to where it stopped.
                assert reader.sub.cursor <= last
        assert (await session.state()).to_dict() == fold_records(published[s] for s in range(1, last + 1)).to_dict()


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(schedule=schedules)
def test_every_subscriber_gets_the_log_after_its_cursor_memory(schedule: list[tuple[str, object, object]]) -> None:
    asyncio.run(run_schedule("memory://", schedule, retention=False))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules)
def test_every_subscriber_gets_the_log_after_its_cursor_sqlite(schedule: list[tuple[str, object, object]]) -> None:
    with tempfile.TemporaryDirectory(prefix="sw-prop-") as directory:
        asyncio.run(run_schedule(f"sqlite:///{Path(directory) / 'log.db'}", schedule, retention=False))


@PROPERTY
@given(schedule=schedules)
def test_with_retention_old_cursors_get_a_snapshot_then_the_tail(schedule: list[tuple[str, object, object]]) -> None:
    asyncio.run(run_schedule("memory://?retain=2", schedule, retention=True))


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=12),
    small=st.booleans(),
)
def test_two_sessions_never_leak_into_each_other(sizes: list[tuple[int, int]], small: bool) -> None:
    async def scenario() -> None:
        async with Hub.open("memory://", options=SMALL if small else None) as hub:
            a, b = await hub.session("a"), await hub.session("b")
            async with a.subscribe() as sub_a, b.subscribe() as sub_b:
                for n_a, n_b in sizes:
                    await asyncio.gather(
                        a.publish_many([MessageDelta(message="ma", part=0, text="a")] * n_a),
                        b.publish_many([MessageDelta(message="mb", part=0, text="b")] * n_b),
                    )
                for session, sub, text in ((a, sub_a, "a"), (b, sub_b, "b")):
                    reader = Reader(0, sub, None)
                    await drain(reader, session)
                    records = [i for i in reader.items if isinstance(i, Record)]
                    assert {r.session for r in records} == {session.id}
                    assert {r.event.text for r in records} == {text}  # type: ignore[union-attr]
                    assert [r.seq for r in records] == list(range(1, session.last_seq + 1))
            assert a.last_seq == sum(n for n, _ in sizes) and b.last_seq == sum(n for _, n in sizes)

    asyncio.run(scenario())
