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
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

from .backends import EventLog, Fence, Snapshot
from .backends.memory import MemoryLog
from .errors import CursorAhead, CursorExpired, LogBehind, LogClosed
from .events import AnyEvent, Event, Record, to_event
from .options import AppendStats, ChannelOptions
from .ring import Ring
from .state import SessionState, apply
from .subscription import Control, ControlName, Item, Subscription

logger = logging.getLogger("sessionwire.channel")

__all__ = ["AppendStats", "ChannelOptions", "Control", "ControlName", "Item", "Session", "Subscription"]


class Session:
    """One session's channel. Get it from :meth:`Hub.session`; don't build it yourself.

    A channel that the hub evicted forwards every call to the session's current
    channel (``reopen``), so a reference kept across an eviction keeps working.
    """

    def __init__(
        self,
        session_id: str,
        log: EventLog,
        state: SessionState,
        options: ChannelOptions,
        stats: AppendStats | None = None,
        reopen: Callable[[], Awaitable[Session]] | None = None,
        rewound: Callable[[], Awaitable[None]] | None = None,
        stored: int = 0,
    ) -> None:
        self.id = session_id
        self._rewound = rewound
        self._log = log
        # memory:// appends without a wait: its records at once (not a subclass's, whose submit may wait or fail).
        self._append_now = log.append_now if type(log) is MemoryLog else None
        self._options = options
        self._stats = stats
        self._reopen = reopen
        self._state = state
        self.last_seq = state.seq
        self._snapshot_at = state.seq
        self._snapshot_gap = self._options.snapshot_gap(stored)  # stored: the bytes of the snapshot it was loaded from
        self._ring = Ring(options.ring_records, options.ring_bytes, state.seq)
        self._pending: dict[int, Record] = {}
        # A dict, not a list: a waiter that gives up (a timeout) leaves it at once, in O(1).
        self._waiters: dict[asyncio.Future[None], None] = {}
        self._subscriptions: set[Subscription] = set()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._appends: set[asyncio.Future[list[Record]]] = set()
        self._filling = False
        self._feed_behind = False
        self._closed = False
        self._ended: str | None = None
        self.last_active = time.monotonic()

    # ------------------------------------------------------------------ publish

    async def publish(self, event: AnyEvent | dict[str, Any]) -> Record:
        """Append one event (a typed event or a dict in wire form) and fan it out; return its record.

        Returns once the record is durable (the log's append returned). The record is
        delivered to subscribers and :meth:`state` in seq order: if an earlier append
        (another publisher's, or another process's) is still in flight, it follows that
        one, so ``state()`` right after ``publish`` may not include it yet.

        Raises:
            InvalidEvent: the event is malformed (typed events are checked too); nothing is appended.
            LifecycleViolation: it breaks the lifecycle of a turn, job or approval; nothing is appended.
            LogClosed: the hub or the log is closed.
        """
        return (await self._publish([to_event(event)]))[0]

    async def publish_many(
        self, events: Iterable[AnyEvent | dict[str, Any]], *, fence: Fence | None = None, external: bool = False
    ) -> list[Record]:
        """Append several events atomically, in order, and fan them out; return their records.

        Returns once they are durable; delivery follows in seq order, as for :meth:`publish`.
        A runtime's work passes its ``fence`` (see :class:`~sessionwire.backends.Fence`).
        ``external`` marks a producer outside this process (the server's ``POST /records`` and
        WebSocket ``publish``): it may not name the turns, jobs and approvals that in-process
        producers (the runtime) opened.

        Raises:
            InvalidEvent: an event is malformed; nothing is appended.
            LifecycleViolation: the events break the lifecycle of a turn, job or approval
                (its ``code`` names the rule); nothing is appended.
            LogClosed: the hub or the log is closed.
            Fenced: the fence's owner was taken over; nothing is appended.
        """
        return await self._publish([to_event(e) for e in events], fence, external=external)

    async def _publish(
        self, typed: list[Event], fence: Fence | None = None, again: bool = True, external: bool = False
    ) -> list[Record]:
        if self._closed:
            return await (await self._successor())._publish(typed, fence, again, external)
        if not typed:
            return []
        started = time.perf_counter()
        if self._append_now is not None:
            # A log that needs no wait (memory://): the publisher goes on without a trip through the loop.
            records = self._append_now(self.id, typed, fence, external)
            self.deliver(records)
        else:
            appended = self._log.submit(self.id, typed, fence, self.last_seq, external)
            if appended.done():
                records = appended.result()
                self.deliver(records)
            else:
                self._appends.add(appended)
                # The append goes on and is delivered even if this caller is cancelled meanwhile: it
                # waits on a future of its own, which _appended resolves once it delivered.
                told: asyncio.Future[list[Record]] = asyncio.get_running_loop().create_future()
                appended.add_done_callback(functools.partial(self._appended, told))
                try:
                    records = await told
                except LogBehind:
                    # The store lost records this channel delivered (a shared log's): put them back
                    # first (or end the subscriptions that saw them), then append once more
                    # (through a new channel if this one ended).
                    if not again or self._rewound is None:
                        raise
                    await self._rewound()
                    return await self._publish(typed, fence, again=False, external=external)
        if self._stats is not None:
            self._stats.appended(len(records), time.perf_counter() - started)
        return records

    def _appended(self, told: asyncio.Future[list[Record]], appended: asyncio.Future[list[Record]]) -> None:
        self._appends.discard(appended)
        try:
            # exception() also marks a failure retrieved: its publisher (if it stayed) raises it.
            if not appended.cancelled() and appended.exception() is None:
                self.deliver(appended.result())
            elif self._pending:
                self._fill_gaps()
        finally:
            if not told.done():  # not if its publisher stopped waiting (cancelled)
                if appended.cancelled():
                    told.cancel()
                elif (exc := appended.exception()) is not None:
                    told.set_exception(exc)
                else:
                    told.set_result(appended.result())

    async def _successor(self) -> Session:
        if self._reopen is None:
            raise LogClosed(f"session {self.id!r} is closed")
        return await self._reopen()

    def deliver(self, records: Sequence[Record]) -> None:
        """Take appended records into the ring and the state, in seq order, once each.

        Records may arrive out of order (concurrent appends, another process's reader);
        a record that leaves a gap waits until the gap is filled (from the log, once no
        append of this channel is under way). Duplicates are dropped.

        Raises:
            ValueError: a record belongs to another session.
        """
        accepted = False
        for record in records:
            if record.session != self.id:
                raise ValueError(f"record {record.session}#{record.seq} delivered to session {self.id!r}")
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
            self._wake()
            if self.last_seq - self._snapshot_at >= self._snapshot_gap:
                self._spawn(self._store_snapshot())
        if self._pending and not self._appends:
            self._fill_gaps()

    def _accept(self, record: Record) -> None:
        apply(self._state, record)
        self.last_seq = record.seq
        self._ring.push(record)
        if self._pending:
            # It may also wait there (after a restart, or read from the log meanwhile).
            self._pending.pop(record.seq, None)

    def _fill_gaps(self) -> None:
        # Records missing before the pending ones were appended elsewhere, or by an
        # append whose task was cancelled: the log has them.
        if not self._filling and not self._closed:
            self._filling = True
            self._spawn(self._read_gaps())

    async def _read_gaps(self) -> None:
        try:
            while self._pending and not self._appends:
                try:
                    records = await self._log.read(self.id, self.last_seq, limit=self._options.read_page)
                except CursorExpired:
                    await self._restart()
                    continue
                if not records:
                    break
                self.deliver(records)
        finally:
            self._filling = False

    async def _restart(self) -> None:
        """Jump to the log's latest snapshot: the records after our last seq are gone."""
        snapshot = await self._log.load_snapshot(self.id)
        if snapshot is None or snapshot.at <= self.last_seq:
            raise CursorExpired(self.id, self.last_seq, self.last_seq + 1)
        self._state = SessionState.from_json(snapshot.state)
        self.last_seq = self._snapshot_at = snapshot.at
        self._snapshot_gap = self._options.snapshot_gap(len(snapshot.state))
        self._ring.reset(snapshot.at)
        self._pending = {s: r for s, r in self._pending.items() if s > snapshot.at}
        self._wake()

    def _wake(self) -> None:
        # Once per batch: every waiting subscriber is woken, and the list starts afresh.
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Until the next delivery (or the close)."""
        waiter = self.waiter()
        try:
            await waiter
        finally:
            # Ended without a wake (cancelled: a reader's timeout): don't keep it until the next delivery.
            self._waiters.pop(waiter, None)

    def waiter(self) -> asyncio.Future[None]:
        """A future that the next delivery (or the close) resolves; :meth:`forget` it if it is given up."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._closed:
            waiter.set_result(None)
        else:
            self._waiters[waiter] = None
        return waiter

    def forget(self, waiter: asyncio.Future[None]) -> None:
        """Drop a waiter that was given up (resolved, or no longer awaited)."""
        self._waiters.pop(waiter, None)

    @property
    def gaps(self) -> list[int]:
        """Seqs of records received out of order and still waiting for an earlier one."""
        return sorted(self._pending)

    @property
    def title(self) -> str | None:
        """The folded state's title, as of :attr:`last_seq` (without copying the state)."""
        return self._state.title

    @property
    def untitled(self) -> bool:
        """Whether the folded state has no title and no turn yet (without copying the state)."""
        return self._state.title is None and not self._state.turns

    @property
    def behind(self) -> bool:
        """Whether other processes' records may be late here (the store's live feed is behind)."""
        return self._feed_behind

    def recent(self, after: int) -> list[Record] | None:
        """Records after ``after`` from the ring, one batch at most; None when ``after`` is out of the ring or lags.

        A cursor lags when it is more than ``lag_records`` behind: its subscriber catches up from the log.
        """
        if after + 1 < self._ring.first or self.last_seq - after > self._options.lag_records:
            return None
        return self._ring.take(after + 1, self._options.max_batch)

    def held_after(self, after: int) -> list[Record]:
        """Every record after ``after`` this channel delivered, from its ring; [] if it no longer holds them all."""
        if after + 1 < self._ring.first or after >= self.last_seq:
            return []
        return self._ring.take(after + 1, self.last_seq - after)

    async def read(self, after: int) -> list[Record]:
        """One page of records after ``after`` from the log, those this channel has delivered only.

        Raises:
            CursorExpired: the log no longer holds them.
        """
        records = await self._log.read(self.id, after, limit=self._options.read_page)
        last = self.last_seq
        return [r for r in records if r.seq <= last]

    async def stored_after(self, after: int) -> list[Record]:
        """Every record after ``after`` in the log, delivered here yet or not (raises CursorExpired)."""
        out: list[Record] = []
        while page := await self._log.read(self.id, after, limit=self._options.read_page):
            out.extend(page)
            after = page[-1].seq
        return out

    def feed_behind(self, behind: bool) -> None:
        """Say whether other processes' records may be late here (a shared log unreachable).

        Live subscribers get a ``lagging`` frame, and ``caught_up`` once the feed is back.
        """
        if behind != self._feed_behind:
            self._feed_behind = behind
            self._wake()
            if not behind and self._rewound is not None and not self._closed:
                # Back after an outage: the store may have restarted without its last writes. Put
                # back what this channel delivered now, before another process appends in their place.
                self._spawn(self._check_rewound())

    async def _check_rewound(self) -> None:
        try:
            _, last = await self._log.bounds(self.id)
            if last < self.last_seq and self._rewound is not None:
                await self._rewound()
        except Exception:
            logger.warning("could not check session %s against the store after an outage", self.id, exc_info=True)

    # ------------------------------------------------------------------ state

    async def state(self) -> SessionState:
        """A copy of the folded state; its ``seq`` is the last record it includes.

        It includes a published record once that record has been delivered, in seq
        order: after its own ``publish`` returned, unless an earlier append is still in flight.
        """
        if self._closed and self._reopen is not None:
            return await (await self._successor()).state()
        return self._state.copy()

    async def work_status(self, kind: Literal["turn", "job"], work_id: str) -> str | None:
        """The folded status of one turn or job (``running``, ``completed``...), or None; copies nothing."""
        if self._closed and self._reopen is not None:
            return await (await self._successor()).work_status(kind, work_id)
        work = (self._state.turns if kind == "turn" else self._state.jobs).get(work_id)
        return None if work is None else work.status

    def snapshot_frame(self) -> Control:
        """A ``snapshot`` control frame of the current state."""
        return Control(control="snapshot", session=self.id, at=self._state.seq, state=self._state.to_dict())

    async def save_snapshot(self) -> None:
        """Store a snapshot of the current state in the log (it may then drop older records)."""
        await self._store_snapshot()

    def _store_snapshot(self) -> Awaitable[None]:
        # Encoded now, so the snapshot is the state at exactly this seq.
        at = self._state.seq
        self._snapshot_at = max(self._snapshot_at, at)
        data = self._state.to_json()
        self._snapshot_gap = self._options.snapshot_gap(len(data))
        return self._log.save_snapshot(self.id, Snapshot(at, data))

    # ------------------------------------------------------------------ subscribe

    @asynccontextmanager
    async def subscribe(self, after: int = 0, credential: str | None = None) -> AsyncIterator[Subscription]:
        """Subscribe to the records with seq > ``after``: first from the log, then live.

        Yields an async iterator of :class:`Record` and :class:`Control` items. ``credential``
        tags it with what it was opened with (see :meth:`revoke`).

        Raises:
            CursorAhead: ``after`` is beyond the session's last seq.
        """
        if after < 0:
            raise ValueError(f"after must be >= 0, not {after}")
        if self._closed and self._reopen is not None:
            async with (await self._successor()).subscribe(after, credential) as forwarded:
                yield forwarded
            return
        if after > self.last_seq:
            _, last = await self._log.bounds(self.id)
            if after > last:
                raise CursorAhead(self.id, after, last)
        sub = Subscription(self, after, credential)
        self._subscriptions.add(sub)
        try:
            yield sub
        finally:
            self._subscriptions.discard(sub)
            sub.close()
            self.last_active = time.monotonic()

    @property
    def buffered(self) -> int:
        """Records kept in memory for live subscribers (the ring; bounded by the channel options)."""
        return self._ring.last - self._ring.first + 1

    @property
    def waiting(self) -> int:
        """Subscriptions waiting for the next delivery."""
        return len(self._waiters)

    def revoke(self, keep: Callable[[str], bool], reason: str) -> int:
        """End every subscription opened with a credential that ``keep`` refuses; how many were ended.

        Each ends with an ``ended`` frame giving ``reason`` (``token_rotated``); untagged ones stay.
        """
        ended = 0
        for sub in self._subscriptions:
            if sub.credential is not None and not keep(sub.credential) and not sub.closed:
                sub.end(reason)
                ended += 1
        if ended:
            self._wake()
        return ended

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
        return not self._subscriptions and not self._appends

    # ------------------------------------------------------------------ lifecycle

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._spawned)

    def _spawned(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A snapshot (or a read of a gap) that failed: a later one tries again, but it is told.
            work = getattr(task, "get_coro", lambda: None)()
            logger.warning("session %s: %s failed: %r", self.id, getattr(work, "__qualname__", "background work"), exc)

    async def aclose(self, snapshot: bool = True, reason: str | None = None) -> None:
        """End every subscription, let appends under way finish, and store a last snapshot.

        With a ``reason`` (``session_deleted``), the session is gone: each subscription's last
        item is an ``ended`` control frame that says so.
        """
        self._closed = True
        self._ended = self._ended or reason
        self._wake()
        while self._appends or self._tasks:
            await asyncio.gather(*self._appends, *self._tasks, return_exceptions=True)
        if snapshot and self._state.seq > self._snapshot_at:
            await self.save_snapshot()

    @property
    def closed(self) -> bool:
        """Whether the channel was closed (evicted or the hub closed)."""
        return self._closed

    @property
    def ended(self) -> str | None:
        """Why the session ended, if it did (``session_deleted``); None while open or only evicted."""
        return self._ended
