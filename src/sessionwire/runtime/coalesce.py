"""The delta coalescer: one ordered writer per turn or job.

Token deltas are buffered for a short window and merged per message part, then
appended in one batch. The window adapts to the load: each record costs one write to
every live subscriber of the session, so with few subscribers deltas wait little (the
newest words show at once) and with many they wait longer (fewer, larger records), up
to the configured window; with nobody subscribed they wait the whole window (nobody is
waiting for them, and fewer records cost less). Many turns and jobs writing at once in
the process make every one of them wait longer too, so the records per second the
process appends and delivers stay bounded. Anything structural (a message starting or completing, a
tool event, a job event, a terminal) goes through :meth:`Writer.emit`, which puts
the buffered deltas *in front of it in the same append*, so a final can never be
overtaken by a late flush. Every append of a writer is serialized and runs to
its end even if the caller is cancelled meanwhile, so the writer's records keep
the order in which they were produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from typing import ClassVar, Literal

from ..backends import Fence
from ..channel import Session
from ..errors import Fenced, LogUnavailable
from ..events import Event, JobProgress, MessageDelta, Record, ToolArgsDelta, encode_event

_MAX_BUFFERED_CHARS = 32_768
"""Flush early when this much text is buffered, so a fast producer stays bounded."""

FLOOR = 0.002
"""Seconds deltas wait at least when someone is subscribed (a few tokens of a fast model)."""

PER_SUBSCRIBER = 0.00011
"""Seconds the wait grows by per live subscriber of the session (about the cost of its write)."""

PER_WRITER = 0.00006
"""Seconds the wait is at least per writer open in the process (500 turns at once: 30 ms)."""


class _Pending:
    """A run of deltas for one part (or one tool call's arguments), merged."""

    __slots__ = ("call", "job", "kind", "message", "part", "texts", "turn")

    def __init__(self, message: str, part: int, kind: str, call: str | None, turn: str | None, job: str | None) -> None:
        self.message, self.part, self.kind, self.call = message, part, kind, call
        self.turn, self.job = turn, job
        self.texts: list[str] = []

    def event(self) -> Event:
        text = "".join(self.texts)
        if self.call is not None:
            return ToolArgsDelta(
                call=self.call, message=self.message, part=self.part, text=text, turn=self.turn, job=self.job
            )
        kind: Literal["text", "reasoning"] = "reasoning" if self.kind == "reasoning" else "text"
        return MessageDelta(message=self.message, part=self.part, kind=kind, text=text, turn=self.turn, job=self.job)


class Writer:
    """Appends one turn's (or job's) records to its session, coalescing deltas.

    ``Writer.open`` counts the writers open in the process (see :meth:`delay`).

    Args:
        session: The session's channel.
        window: Seconds deltas may wait before they are appended, at most (0: append each at once);
            they wait less while the session has few live subscribers (see :meth:`delay`).
        progress_window: Seconds between two ``job.progress`` records, at least.
        turn: The turn the deltas belong to, if any.
        job: The job the deltas belong to, if any.
        fence: The fence its appends carry (its runtime's owner and lease generation).
    """

    open: ClassVar[weakref.WeakSet[Writer]] = weakref.WeakSet()
    """Writers open in the process: created, not yet closed, and not dropped unclosed."""

    def __init__(
        self,
        session: Session,
        window: float,
        *,
        progress_window: float | None = None,
        turn: str | None = None,
        job: str | None = None,
        fence: Fence | None = None,
    ) -> None:
        if window < 0:
            raise ValueError(f"the coalescing window is >= 0 seconds, not {window}")
        Writer.open.add(self)
        self.session = session
        self.window = window
        self.progress_window = window if progress_window is None else progress_window
        self.turn, self.job = turn, job
        self.fence = fence
        self._pending: list[_Pending] = []
        self._buffered = 0
        self._progress: JobProgress | None = None
        self._progress_at = -1e18
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        self._closed = False
        self._fenced: Fenced | None = None  # once fenced, every later call fails: nothing may land
        # What an append that the log could not take held: it goes first in the next append, so
        # no delta is skipped (a later one never lands before it). A timer's failed flush is
        # raised by the next delta, so the work ends (turn.failed, log_unavailable) instead of
        # going on over a hole.
        self._unsent: list[Event] = []
        self._failed: Exception | None = None
        # When the log could not be reached with an append in flight, that append may have landed
        # all the same (its reply was lost): the seq the channel stood at before it, until the next
        # append has checked which of the held deltas the log already has (see _not_stored).
        self._doubt: int | None = None
        self._last = 0  # the seq of this writer's last record
        self.records = 0

    # ------------------------------------------------------------------ deltas

    async def delta(self, message: str, part: int, text: str, kind: str = "text") -> None:
        """Buffer a text or reasoning fragment of a message part."""
        self._add(message, part, kind, None, text)
        await self._after_add()

    async def args_delta(self, call: str, message: str, part: int, text: str) -> None:
        """Buffer a fragment of a tool call's arguments."""
        self._add(message, part, "args", call, text)
        await self._after_add()

    async def progress(self, done: int, total: int | None = None, note: str | None = None) -> None:
        """Report a job's progress; only the latest is kept, at most one record per window."""
        if self.job is None:
            raise ValueError("progress belongs to a job; this writer writes a turn")
        self._progress = JobProgress(job=self.job, done=done, total=total, note=note)
        if self.progress_window <= 0 and self.window <= 0:
            await self.flush()
        else:
            self._arm()

    def _add(self, message: str, part: int, kind: str, call: str | None, text: str) -> None:
        if not text:
            return
        pending = self._pending
        last = pending[-1] if pending else None
        if last is None or last.message != message or last.part != part or last.kind != kind or last.call != call:
            last = _Pending(message, part, kind, call, self.turn, self.job)
            pending.append(last)
        last.texts.append(text)
        self._buffered += len(text)

    async def _after_add(self) -> None:
        if self._fenced is not None:
            raise self._fenced
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed
        if self.window <= 0 or self._buffered >= _MAX_BUFFERED_CHARS:
            await self.flush()
        else:
            self._arm()

    def delay(self) -> float:
        """How long the deltas buffered now may wait, up to the window.

        :data:`FLOOR` plus :data:`PER_SUBSCRIBER` per live subscriber of the session, and at
        least :data:`PER_WRITER` per writer open in the process; the whole window when the
        session has no subscriber.
        """
        subscribers = self.session.subscribers
        if not subscribers:
            return self.window
        return min(self.window, max(FLOOR + PER_SUBSCRIBER * subscribers, PER_WRITER * len(Writer.open)))

    @property
    def timer_armed(self) -> bool:
        """Whether a delayed flush is waiting to run (never once the writer is closed)."""
        return self._timer is not None and not self._timer.done()

    def _arm(self) -> None:
        # Not once closing: the final flush takes whatever is held, and nothing would stop a new timer.
        if self._timer is None and not self._closed:
            self._timer = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        # While it sleeps, self._timer is this task; once it flushes, a new timer may be armed.
        try:
            # Deltas may come (or have been taken by a flush under way) while it sleeps, so it
            # always sleeps their delay; a progress record younger than its own window is held
            # back by the flush, which arms the timer again.
            await asyncio.sleep(self.delay())
        except asyncio.CancelledError:
            return
        task = self._timer
        self._timer = None
        if task is not None:
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        try:
            # Not through emit(): nothing cancels a timer once it flushes (it left self._timer),
            # so it needs no task of its own to run to its end.
            await self._append([], False)
        except Fenced:
            pass  # remembered: the work's next call raises it
        except Exception as exc:
            self._failed = exc  # its deltas are kept (see _unsent); the work's next delta raises this

    # ------------------------------------------------------------------ structural

    async def emit(self, *events: Event, final: bool = False) -> list[Record]:
        """Append the buffered deltas, then ``events``, in one batch; return the records of ``events``.

        The append goes on even if the caller is cancelled while it waits.

        Args:
            events: The structural events to append after the deltas.
            final: Include a held-back progress record whatever its age (before a terminal).
        """
        task = asyncio.ensure_future(self._append(list(events), final))
        return await asyncio.shield(task)

    async def flush(self) -> None:
        """Append whatever deltas and progress are buffered."""
        await self.emit()

    async def _append(self, events: list[Event], final: bool) -> list[Record]:
        if self._fenced is not None:
            raise self._fenced
        async with self._lock:
            if self._doubt is not None:
                # Raises while the log is still unreachable: what is held stays held.
                self._unsent = await self._not_stored(self._unsent, self._doubt)
                self._doubt = None
            batch: list[Event] = [*self._unsent, *(p.event() for p in self._pending)]
            self._unsent = []
            self._pending = []
            self._buffered = 0
            if self._progress is not None:
                now = time.monotonic()
                if final or now - self._progress_at >= self.progress_window:
                    batch.append(self._progress)
                    self._progress = None
                    self._progress_at = now
                else:
                    self._arm()
            batch.extend(events)
            if not batch:
                return []
            since = max(self.session.last_seq, self._last)
            try:
                records = await self.session.publish_many(batch, fence=self.fence)
            except Fenced as exc:
                self._fenced = exc  # also when a timer's flush was refused: the work's next call raises it
                raise
            except Exception as exc:
                # Not written (whatever the error: none may let a later delta land before these):
                # the deltas and progress go first in the next append. The caller's own events do
                # not: it was told they failed (and may have given up on what they meant).
                self._unsent = batch[: len(batch) - len(events)]
                if isinstance(exc, LogUnavailable) and self._doubt is None:
                    self._doubt = since  # or written after all: the next append checks first
                raise
            self._failed = None  # the store is back and took all that was held: nothing is missing
            self.records += len(records)
            if records:
                self._last = records[-1].seq
            return records[len(records) - len(events) :] if events else []

    async def _not_stored(self, held: list[Event], since: int) -> list[Event]:
        """``held`` without what the log already has of it: an append whose reply was lost landed.

        That append, if it landed, is one run of records after ``since`` (this writer appends one
        batch at a time), starting with the first of ``held``: the events of a run of deltas of this
        writer's message are that writer's alone, so equal bytes are the same append.
        """
        if not held:
            return held
        wanted = [encode_event(event) for event in held]
        stored = [encode_event(record.event) for record in await self.session.stored_after(since)]
        start = next((i for i, data in enumerate(stored) if data == wanted[0]), None)
        if start is None:
            return held
        landed = 0
        while landed < len(held) and start + landed < len(stored) and stored[start + landed] == wanted[landed]:
            landed += 1
        return held[landed:]

    async def aclose(self) -> None:
        """Append what is buffered and stop the timer; no timer is armed afterwards."""
        self._closed = True
        Writer.open.discard(self)
        await self._stop_timer()
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)
        await self.emit(final=True)
        await self._stop_timer()  # one armed before it was closed, by an append still under way

    async def abandon(self) -> None:
        """Drop what is buffered and stop, appending nothing (its work was taken over: see Fenced)."""
        self._closed = True
        Writer.open.discard(self)
        self._pending, self._buffered, self._progress, self._unsent = [], 0, None, []
        await self._stop_timer()
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)  # their errors are known

    async def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()  # it is still sleeping: flushing timers are in self._flushing
            with contextlib.suppress(asyncio.CancelledError):
                await timer
