"""A subscriber's cursor into a session's records, and the control frames it yields.

A :class:`Subscription` is not a queue: it reads from its session's ring (or from
the log while it is behind) whenever it is asked for a batch, and waits for the
next delivery when there is nothing new. See :mod:`sessionwire.channel`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Literal, Protocol, Union, cast

import msgspec

from .errors import CursorExpired, LogClosed
from .events import Record

ControlName = Literal["snapshot", "lagging", "caught_up", "heartbeat", "ended"]


class Control(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A control frame: not a record, never logged, no seq of its own.

    Attributes:
        control: ``snapshot``, ``lagging``, ``caught_up``, ``heartbeat`` or ``ended``.
        session: The session it is about.
        at: For ``snapshot``: the seq the state stands at; the records after it follow.
        state: For ``snapshot``: the folded state (``SessionState.to_dict()``).
        reason: For ``ended``: why the session's stream ended (``session_deleted``); the last item.
    """

    control: ControlName
    session: str
    at: Union[int, None] = None
    state: Union[dict[str, Any], None] = None
    reason: Union[str, None] = None

    def to_json(self) -> str:
        """The frame's JSON (like :meth:`Record.to_json`)."""
        return _encoder.encode(self).decode()

    @property
    def raw(self) -> bytes:
        """The frame's JSON bytes (like :attr:`Record.raw`)."""
        return _encoder.encode(self)


Item = Union[Record, Control]
"""What a subscription yields."""

_encoder = msgspec.json.Encoder()


class Source(Protocol):
    """What a subscription reads from: its session's channel (:class:`sessionwire.Session`)."""

    id: str
    """The session's id."""

    last_seq: int
    """The last seq delivered to the channel."""

    @property
    def closed(self) -> bool:
        """Whether the channel was closed: it delivers nothing more."""
        ...

    @property
    def behind(self) -> bool:
        """Whether other processes' records may be late (the store's live feed is behind)."""
        ...

    @property
    def ended(self) -> str | None:
        """Why the channel closed for good, if it did (``session_deleted``): subscribers are told."""
        ...

    def recent(self, after: int) -> list[Record] | None:
        """Records after ``after`` from memory, one batch at most; None when the cursor must catch up from the log."""
        ...

    async def read(self, after: int) -> list[Record]:
        """One page of delivered records after ``after`` from the log; raises CursorExpired."""
        ...

    def waiter(self) -> asyncio.Future[None]:
        """A future that the next delivery (or the close) resolves."""
        ...

    def forget(self, waiter: asyncio.Future[None]) -> None:
        """Drop a waiter that was given up."""
        ...

    def snapshot_frame(self) -> Control:
        """A ``snapshot`` frame of the current state."""
        ...


class Subscription:
    """A cursor into a session's records: ``async for item in sub`` or ``await sub.batch()``."""

    def __init__(self, channel: Source, after: int, credential: str | None = None) -> None:
        self._channel = channel
        self.cursor = after
        self.credential = credential
        """What it was opened with (a session token's hash), if a rotation of that token is to end it."""
        self.lagging = False
        self._live = False
        self._told_end = False
        self._ended: str | None = None
        self._buffer: deque[Item] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._nudged = False
        # next_batch()'s timeout: one timer per subscription that moves with the deadline, not a
        # timer armed and cancelled around every batch (a stream takes a batch per record).
        self._deadline = 0.0
        self._alarm: asyncio.TimerHandle | None = None
        self._timed = False  # inside next_batch(timeout): only that wait is ended by the deadline

    @property
    def closed(self) -> bool:
        """Whether the channel closed (evicted, or the hub closed): no batch will bring more records.

        Tells an empty :meth:`next_batch` that timed out (False) from one that ends the
        subscription (True). Items already buffered are still returned first. Also True once
        the subscription itself was ended (:meth:`end`).
        """
        return self._channel.closed or self._ended is not None

    def end(self, reason: str) -> None:
        """End this subscription alone (its token was rotated, say): its last item is an ``ended`` frame.

        The channel must be woken for a waiting reader to see it (:meth:`Session.revoke` does).
        """
        self._ended = self._ended or reason

    @property
    def session(self) -> str:
        """The id of the session it reads."""
        return self._channel.id

    @property
    def source(self) -> Source:
        """The channel it reads (the session's current one)."""
        return self._channel

    @property
    def pending(self) -> int:
        """Items taken from the channel and not yet returned by ``async for``."""
        return len(self._buffer)

    def __aiter__(self) -> Subscription:
        # Itself, not an async generator (which would cost less per item): a generator ends for
        # good when a wait for its next item is cancelled (a timeout), and a subscription does not.
        return self

    async def __anext__(self) -> Item:
        while not self._buffer:
            batch = await self.batch()
            if not batch and self.closed:
                raise StopAsyncIteration
            self._buffer.extend(batch)  # [] when nudged: wait on
        return self._buffer.popleft()

    async def batch(self) -> list[Item]:
        """The next items, as many as are ready (at least one).

        [] once the channel is closed (see :attr:`closed`), or when :meth:`nudge` ends its wait.
        """
        if self._buffer:
            out = list(self._buffer)
            self._buffer.clear()
            return out
        ch = self._channel
        while not ch.closed and self._ended is None:
            if self.cursor < ch.last_seq:
                taken = ch.recent(self.cursor)
                if taken is not None:
                    self.cursor = taken[-1].seq
                    records = cast(list[Item], taken)
                    self._live = True
                    if self.lagging and not ch.behind:
                        self.lagging = False
                        records.insert(0, Control(control="caught_up", session=ch.id))
                    return records
                caught = await self._catch_up()
                if caught:
                    return caught
                if self._nudged:
                    self._nudged = False
                    return []
                continue
            if self.lagging and not ch.behind:
                self.lagging = False
                return [Control(control="caught_up", session=ch.id)]
            if ch.behind and not self.lagging:
                self.lagging = True
                return [Control(control="lagging", session=ch.id)]
            self._live = True
            await self._wait()
            if self._nudged:
                self._nudged = False
                return []
        reason = self._ended or ch.ended
        if reason is not None and not self._told_end:
            self._told_end = True
            return [Control(control="ended", session=ch.id, reason=reason)]
        return []

    def poll(self) -> list[Record] | None:
        """The records it can take at once on the plain live path: [] if none is new.

        None when it must :meth:`batch` instead: items are buffered, it lags or is behind
        the ring, the feed is behind, or the channel (or the subscription) ended. It never
        waits; the cursor moves past what it returns, as for a batch.
        """
        ch = self._channel
        if self._buffer or self.lagging or self._ended is not None or ch.closed or ch.behind:
            return None
        if self.cursor >= ch.last_seq:
            return []
        taken = ch.recent(self.cursor)
        if taken is not None:
            self.cursor = taken[-1].seq
            self._live = True
        return taken

    async def _catch_up(self) -> list[Item]:
        ch = self._channel
        out: list[Item] = []
        if self._live and not self.lagging:
            self.lagging = True
            out.append(Control(control="lagging", session=ch.id))
        try:
            records = await ch.read(self.cursor)
        except asyncio.CancelledError:
            # A reader with a timeout: the frame it missed comes first next time.
            self._buffer.extend(out)
            raise
        except LogClosed:
            if ch.closed:
                return []  # the hub closed the log under us: the subscription just ends
            raise
        except CursorExpired:
            frame = ch.snapshot_frame()
            self.cursor = frame.at or 0
            out.append(frame)
            return out
        records = [r for r in records if r.seq > self.cursor]
        if records:
            self.cursor = records[-1].seq
            out.extend(records)
            if self.lagging and self.cursor >= ch.last_seq:
                self.lagging = False
                out.append(Control(control="caught_up", session=ch.id))
        elif not out:
            # Nothing readable yet past the cursor: wait for the next delivery.
            await self._wait()
        return out

    async def _wait(self) -> None:
        """Until the next delivery, the close, or :meth:`nudge` (which sets ``_nudged``)."""
        ch = self._channel
        waiter = self._waiter = ch.waiter()
        try:
            await waiter
        finally:
            self._waiter = None
            ch.forget(waiter)

    async def next_batch(self, timeout: float | None = None) -> list[Item]:
        """:meth:`batch` with a timeout: [] if nothing came in ``timeout`` seconds, or the channel closed.

        :attr:`closed` tells the two apart.
        """
        if timeout is None:
            return await self.batch()
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + timeout
        if self._alarm is None:
            self._alarm = loop.call_at(self._deadline, self._ring, loop)
        self._timed = True
        try:
            return await self.batch()
        finally:
            self._timed = False

    def nudge(self) -> None:
        """Make a :meth:`batch` that waits for the next delivery return [] now (nothing if none waits)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._nudged = True
            waiter.set_result(None)

    def _ring(self, loop: asyncio.AbstractEventLoop) -> None:
        # The deadline moved on while it slept (batches came): sleep on until the new one.
        if loop.time() < self._deadline - 0.001:
            self._alarm = loop.call_at(self._deadline, self._ring, loop)
        else:
            self._alarm = None
            if self._timed:  # a plain batch() or async for waits on, whatever an earlier deadline said
                self.nudge()

    def close(self) -> None:
        """Stop its timer (the channel calls it as the subscription ends)."""
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None
