"""One session's channel: publish through the log, fan out from one ring.

Recent records live once, in the session's ring. A subscriber is a cursor into
it, not a queue that every publish pushes into: a publish appends to the log,
puts the record in the ring, folds it into the state and wakes the waiting
subscribers once for the whole batch. A subscriber whose cursor fell out of the
ring (or too far behind) leaves the live path, reads from the log until it is
back, and rejoins; if the log no longer holds what it needs, it gets a
``snapshot`` control frame and continues from there. The publisher never waits
for a subscriber.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, Union

import msgspec

from .errors import CursorAhead, CursorExpired, LogClosed
from .events import AnyEvent, Record, to_event
from .log.base import EventLog, Snapshot
from .state import SessionState, apply

if TYPE_CHECKING:
    from .hub import HubStats

ControlName = Literal["snapshot", "lagging", "caught_up", "heartbeat"]


class Control(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A control frame: not a record, never logged, no seq of its own.

    Attributes:
        control: ``snapshot``, ``lagging``, ``caught_up`` or ``heartbeat``.
        session: The session it is about.
        at: For ``snapshot``: the seq the state stands at; the records after it follow.
        state: For ``snapshot``: the folded state (``SessionState.to_dict()``).
    """

    control: ControlName
    session: str
    at: Union[int, None] = None
    state: Union[dict[str, Any], None] = None

    def to_json(self) -> bytes:
        """The frame as JSON bytes."""
        return _encoder.encode(self)


Item = Union[Record, Control]
"""What a subscription yields."""

_encoder = msgspec.json.Encoder()


class ChannelOptions(msgspec.Struct, kw_only=True):
    """Bounds of a session's channel.

    Attributes:
        ring_records: Recent records kept in memory for live subscribers.
        ring_bytes: The ring's bound in bytes of encoded records.
        lag_records: A subscriber further behind than this leaves the live path.
        snapshot_every: Store a snapshot of the state every so many records.
        read_page: Records read from the log per page while catching up.
        max_batch: Records handed to a subscriber per batch, at most.
    """

    ring_records: int = 4096
    ring_bytes: int = 4 * 1024 * 1024
    lag_records: int = 4096
    snapshot_every: int = 1000
    read_page: int = 1024
    max_batch: int = 512


class Session:
    """One session's channel. Get it from :meth:`Hub.session`; don't build it yourself."""

    def __init__(
        self,
        session_id: str,
        log: EventLog,
        state: SessionState,
        options: ChannelOptions,
        stats: HubStats | None = None,
    ) -> None:
        self.id = session_id
        self._log = log
        self._options = options
        self._stats = stats
        self._state = state
        self.last_seq = state.seq
        self._snapshot_at = state.seq
        self._ring: deque[Record] = deque()
        self._ring_first = state.seq + 1
        self._ring_bytes = 0
        self._pending: dict[int, Record] = {}
        self._wake = asyncio.Event()
        self._subscriptions: set[Subscription] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in_flight = 0
        self._closed = False
        self.last_active = time.monotonic()

    # ------------------------------------------------------------------ publish

    async def publish(self, event: AnyEvent | dict[str, Any]) -> Record:
        """Append one event (a typed event or a dict in wire form) and fan it out; return its record."""
        return (await self.publish_many((event,)))[0]

    async def publish_many(self, events: Iterable[AnyEvent | dict[str, Any]]) -> list[Record]:
        """Append several events atomically, in order, and fan them out; return their records.

        Raises:
            InvalidEvent: an event is malformed; nothing is appended.
        """
        if self._closed:
            raise LogClosed(f"session {self.id!r} is closed")
        typed = [to_event(e) for e in events]
        if not typed:
            return []
        self.last_active = time.monotonic()
        started = time.perf_counter()
        self._in_flight += 1
        task = asyncio.ensure_future(self._log.append(self.id, typed))
        task.add_done_callback(self._appended)
        # The append goes on and is delivered even if this caller is cancelled meanwhile.
        records = await asyncio.shield(task)
        if self._stats is not None:
            self._stats.appended(len(records), time.perf_counter() - started)
        return records

    def _appended(self, task: asyncio.Future[list[Record]]) -> None:
        self._in_flight -= 1
        if not task.cancelled() and task.exception() is None:
            self.deliver(task.result())

    def deliver(self, records: Sequence[Record]) -> None:
        """Take appended records into the ring and the state, in seq order, once each.

        Records may arrive out of order (concurrent appends, another process's reader);
        a record that leaves a gap waits until the gap is filled. Duplicates are dropped.
        """
        accepted = False
        for record in records:
            if record.seq <= self.last_seq:
                continue
            if record.seq != self.last_seq + 1:
                self._pending[record.seq] = record
                continue
            self._accept(record)
            accepted = True
            pending = self._pending
            while pending:
                nxt = pending.pop(self.last_seq + 1, None)
                if nxt is None:
                    break
                self._accept(nxt)
        if accepted:
            self.last_active = time.monotonic()
            self._wake.set()
            self._wake.clear()
            if self.last_seq - self._snapshot_at >= self._options.snapshot_every:
                self._spawn(self.save_snapshot())

    def _accept(self, record: Record) -> None:
        apply(self._state, record)
        self.last_seq = record.seq
        ring = self._ring
        ring.append(record)
        self._ring_bytes += len(record.raw)
        options = self._options
        while len(ring) > options.ring_records or (self._ring_bytes > options.ring_bytes and len(ring) > 1):
            self._ring_bytes -= len(ring.popleft().raw)
            self._ring_first += 1

    @property
    def gaps(self) -> list[int]:
        """Seqs of records received out of order and still waiting for an earlier one."""
        return sorted(self._pending)

    # ------------------------------------------------------------------ state

    async def state(self) -> SessionState:
        """A copy of the folded state; its ``seq`` is the last record it includes."""
        return SessionState.from_json(self._state.to_json())

    def snapshot_frame(self) -> Control:
        """A ``snapshot`` control frame of the current state."""
        return Control(control="snapshot", session=self.id, at=self._state.seq, state=self._state.to_dict())

    async def save_snapshot(self) -> None:
        """Store a snapshot of the current state in the log (it may then drop older records)."""
        at = self._state.seq
        if at <= self._snapshot_at and at != 0:
            return
        data = self._state.to_json()
        self._snapshot_at = max(self._snapshot_at, at)
        await self._log.save_snapshot(self.id, Snapshot(at, data))

    # ------------------------------------------------------------------ subscribe

    @asynccontextmanager
    async def subscribe(self, after: int = 0) -> AsyncIterator[Subscription]:
        """Subscribe to the records with seq > ``after``: first from the log, then live.

        Yields an async iterator of :class:`Record` and :class:`Control` items.

        Raises:
            CursorAhead: ``after`` is beyond the session's last seq.
        """
        if after < 0:
            raise ValueError(f"after must be >= 0, not {after}")
        if after > self.last_seq:
            _, last = await self._log.bounds(self.id)
            if after > last:
                raise CursorAhead(self.id, after, last)
        sub = Subscription(self, after)
        self._subscriptions.add(sub)
        try:
            yield sub
        finally:
            self._subscriptions.discard(sub)
            self.last_active = time.monotonic()

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscriptions)

    @property
    def lagging(self) -> int:
        """How many subscriptions are off the live path, catching up from the log."""
        return sum(1 for s in self._subscriptions if s.lagging)

    @property
    def idle(self) -> bool:
        """No subscriber and no append under way."""
        return not self._subscriptions and self._in_flight == 0

    # ------------------------------------------------------------------ lifecycle

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self, snapshot: bool = True) -> None:
        """End every subscription and store a last snapshot."""
        self._closed = True
        self._wake.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if snapshot and self._state.seq > self._snapshot_at:
            await self.save_snapshot()

    @property
    def closed(self) -> bool:
        """Whether the channel was closed (evicted or the hub closed)."""
        return self._closed


class Subscription:
    """A cursor into a session's records: ``async for item in sub`` or ``await sub.batch()``."""

    def __init__(self, channel: Session, after: int) -> None:
        self._channel = channel
        self.cursor = after
        self.lagging = False
        self._live = False
        self._buffer: deque[Item] = deque()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Item:
        if not self._buffer:
            batch = await self.batch()
            if not batch:
                raise StopAsyncIteration
            self._buffer.extend(batch)
        return self._buffer.popleft()

    async def batch(self) -> list[Item]:
        """The next items, as many as are ready (at least one); [] once the channel is closed."""
        if self._buffer:
            out = list(self._buffer)
            self._buffer.clear()
            return out
        ch = self._channel
        options = ch._options
        while not ch._closed:
            cursor = self.cursor
            if cursor < ch.last_seq:
                in_ring = cursor + 1 >= ch._ring_first
                if in_ring and ch.last_seq - cursor <= options.lag_records:
                    start = cursor + 1 - ch._ring_first
                    ring = ch._ring
                    stop = min(len(ring), start + options.max_batch)
                    records: list[Item] = [ring[i] for i in range(start, stop)]
                    self.cursor = ring[stop - 1].seq
                    if self.lagging:
                        self.lagging = False
                        records.insert(0, Control(control="caught_up", session=ch.id))
                    return records
                caught = await self._catch_up()
                if caught:
                    return caught
                continue
            if self.lagging:
                self.lagging = False
                return [Control(control="caught_up", session=ch.id)]
            self._live = True
            await ch._wake.wait()
        return []

    async def _catch_up(self) -> list[Item]:
        ch = self._channel
        out: list[Item] = []
        if self._live and not self.lagging:
            self.lagging = True
            out.append(Control(control="lagging", session=ch.id))
        try:
            records = await ch._log.read(ch.id, self.cursor, limit=ch._options.read_page)
        except CursorExpired:
            frame = ch.snapshot_frame()
            self.cursor = frame.at or 0
            out.append(frame)
            return out
        records = [r for r in records if r.seq > self.cursor]
        if records:
            self.cursor = records[-1].seq
            out.extend(records)
        elif not out:
            # Nothing readable yet past the cursor: wait for the next delivery.
            await ch._wake.wait()
        return out

    async def next_batch(self, timeout: float | None = None) -> list[Item]:
        """:meth:`batch` with a timeout: [] if nothing came in ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self.batch()
        except TimeoutError:
            return []
